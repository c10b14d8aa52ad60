"""Step, sigmoid and ReLU as the hidden activation: the functions and their derivatives, and what gradient
descent makes of each on MNIST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from mlpjax import plots
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.model import ModelConfig
from mlpjax.experiments import common

QUESTION = "Can the MLP learn with a step activation, as with sigmoid and ReLU?"
ORDER = 30  # the place of its question in the tutorial
ACTIVATIONS = ("step", "sigmoid", "relu")
FULL_EPOCHS = 5


def derivative(name: str):
    """``x (N,) -> f'(x) (N,)`` of activation ``name``, by jax.grad (JAX takes step'(0) = relu'(0) = 0)."""
    return jax.vmap(jax.grad(model.ACTIVATIONS[name]))


def relative_change(before: model.Params, after: model.Params) -> dict[str, float]:
    """``||W_after - W_before|| / ||W_before||`` of each layer's kernel."""
    return {
        name: float(
            np.linalg.norm(np.asarray(after[name]["kernel"]) - np.asarray(layer["kernel"]))
            / np.linalg.norm(np.asarray(layer["kernel"]))
        )
        for name, layer in before.items()
        if "kernel" in layer
    }


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: every activation starts from the same ``seed`` (same initial weights, order, masks)."""
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    fns = {name: model.ACTIVATIONS[name] for name in ACTIVATIONS}
    plots.activation_functions(
        fns,
        out_dir / "activation_functions.png",
        derivatives={name: derivative(name) for name in ACTIVATIONS},
        title="Activation functions (solid) and their derivatives (dashed)",
    )
    per_act: dict[str, dict[str, Any]] = {}
    histories = {}
    for name in ACTIVATIONS:
        config = TrainConfig(dataset=ds.name, model=ModelConfig(activation=name), epochs=epochs, seed=seed)
        init = common.initial_params(config, ds)
        grad_norms = common.layer_gradient_norms(init, config, ds)
        result = common.fit(config, ds, log, name)
        change = relative_change(init, result.state.params)
        histories[name] = result.history
        per_act[name] = {
            "test_accuracy": result.test_metrics["accuracy"],
            "test_loss": result.test_metrics["loss"],
            "train_accuracy": result.history["accuracy"][-1],
            "initial_gradient_norm": grad_norms,
            "relative_weight_change": change,
            "history": result.history,
        }
        log(
            f"{name}: test accuracy {result.test_metrics['accuracy']:.4f}; |dL/dW| at init hidden "
            f"{grad_norms['hidden_0']:.3g}, output {grad_norms['output']:.3g}; weights moved hidden "
            f"{change['hidden_0']:.3g}, output {change['output']:.3g}"
        )
    plots.training_curves(
        histories,
        out_dir / "training.png",
        title=f"Hidden activation: {', '.join(ACTIVATIONS)} ({ds.name}, {epochs} epochs)",
    )
    rows = [
        [
            name,
            f"{r['test_accuracy']:.4f}",
            f"{r['test_loss']:.4f}",
            f"{r['initial_gradient_norm']['hidden_0']:.3g}",
            f"{r['initial_gradient_norm']['output']:.3g}",
            f"{r['relative_weight_change']['hidden_0']:.3g}",
            f"{r['relative_weight_change']['output']:.3g}",
        ]
        for name, r in per_act.items()
    ]
    step, best = per_act["step"], max(ACTIVATIONS, key=lambda a: per_act[a]["test_accuracy"])
    findings = [
        f"step: the hidden layer's gradient is exactly {step['initial_gradient_norm']['hidden_0']:g} "
        f"(step'(x) = 0 wherever it is defined), so its weights moved by "
        f"{step['relative_weight_change']['hidden_0']:g}: the hidden layer cannot learn by gradient descent.",
        f"step still reaches {step['test_accuracy']:.4f} test accuracy: the output layer (whose gradient is not "
        f"zero) learns a linear classifier on {ModelConfig().hidden[0]} fixed random binary features "
        f"(signs of random projections). That is learning in the last layer only, not through the network.",
        f"sigmoid reaches {per_act['sigmoid']['test_accuracy']:.4f} and relu "
        f"{per_act['relu']['test_accuracy']:.4f} after {epochs} epochs (best: {best}); both move their "
        f"hidden weights ({per_act['sigmoid']['relative_weight_change']['hidden_0']:.3g} and "
        f"{per_act['relu']['relative_weight_change']['hidden_0']:.3g} of their initial norm).",
    ]
    return common.Report(
        results={"activations": per_act},
        tables=[
            common.Table(
                f"Test accuracy after {epochs} epochs, gradients at initialisation",
                [
                    "activation",
                    "test accuracy",
                    "test loss",
                    "‖∂L/∂W_hidden‖ at init",
                    "‖∂L/∂W_out‖ at init",
                    "‖ΔW_hidden‖/‖W_hidden‖",
                    "‖ΔW_out‖/‖W_out‖",
                ],
                rows,
            )
        ],
        figures={
            "activation_functions.png": "Step, sigmoid and ReLU (solid) and their derivatives (dashed): "
            "the step's derivative is zero everywhere it exists.",
            "training.png": "Loss and accuracy per epoch (train dashed, test solid) for each activation.",
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={
            "epochs": epochs,
            "hidden": list(ModelConfig().hidden),
            "optimizer": "adam",
            "dropout": ModelConfig().dropout,
            "gradient batch": common.GRAD_BATCH,
        },
    )
