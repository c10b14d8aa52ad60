"""Categorical cross-entropy against mean squared error, for the same softmax classifier, with the tutorial's
Adam and with plain SGD (whose steps scale with the gradient, unlike Adam's)."""

from __future__ import annotations

from pathlib import Path

from mlpjax import plots
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common

QUESTION = "Does categorical cross-entropy train the softmax classifier better than mean squared error?"
ORDER = 70  # the place of its question in the tutorial
LOSS_NAMES = ("categorical_crossentropy", "mse")
OPTIMIZER_NAMES = ("adam", "sgd")
SHORT = {"categorical_crossentropy": "cross-entropy", "mse": "mse"}
FULL_EPOCHS = 10


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: every run starts from ``seed`` (same initial weights, batch order and dropout masks).

    Each run's own ``val_loss`` is in its own units, so the test set is also scored with cross-entropy
    after every epoch for all runs, and the probability mse is reported for all.
    """
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    runs: dict[str, dict[str, dict]] = {opt: {} for opt in OPTIMIZER_NAMES}
    curves = {}
    for opt in OPTIMIZER_NAMES:
        for name in LOSS_NAMES:
            label = f"{SHORT[name]}, {opt}"
            config = TrainConfig(dataset=ds.name, loss=name, optimizer=opt, epochs=epochs, seed=seed)
            grads = common.layer_gradient_norms(common.initial_params(config, ds), config, ds)
            on_test = common.EpochEvaluator(config, ds, ds.x_test, ds.y_test, loss_name="categorical_crossentropy")
            result = common.fit(config, ds, log, label, on_epoch_end=on_test)
            h = result.history
            runs[opt][name] = {
                "test_accuracy_per_epoch": h["val_accuracy"],
                "test_accuracy": h["val_accuracy"][-1],
                "test_crossentropy": on_test.series("loss")[-1],
                "test_mse": result.test_metrics["mse"],
                "test_crossentropy_per_epoch": on_test.series("loss"),
                "initial_gradient_norm": grads,
                "history": h,
            }
            curves[label] = {**h, "test_crossentropy": on_test.series("loss")}
            log(
                f"{label}: test accuracy {h['val_accuracy'][-1]:.4f}, test cross-entropy "
                f"{runs[opt][name]['test_crossentropy']:.4f}, |dL/dW_out| at init {grads['output']:.3g}"
            )
    plots.training_curves(
        curves,
        out_dir / "curves.png",
        panels=(("accuracy", ("accuracy", "val_accuracy")), ("test cross-entropy", ("test_crossentropy",))),
        log_panels=("test cross-entropy",),
        title=f"The same classifier trained with cross-entropy or mse ({ds.name}, {epochs} epochs)",
    )
    marks = sorted({1, min(2, epochs), epochs})
    rows = [
        [SHORT[name], opt]
        + [f"{r['test_accuracy_per_epoch'][e - 1]:.4f}" for e in marks]
        + [
            f"{r['test_crossentropy']:.4f}",
            f"{r['test_mse']:.5f}",
            f"{r['initial_gradient_norm']['hidden_0']:.3g}",
            f"{r['initial_gradient_norm']['output']:.3g}",
        ]
        for opt in OPTIMIZER_NAMES
        for name, r in runs[opt].items()
    ]
    findings = []
    for opt in OPTIMIZER_NAMES:
        ce, mse = runs[opt]["categorical_crossentropy"], runs[opt]["mse"]
        findings.append(
            f"With {opt}: test accuracy after {epochs} epochs {ce['test_accuracy']:.4f} (cross-entropy) against "
            f"{mse['test_accuracy']:.4f} (mse), a difference of {ce['test_accuracy'] - mse['test_accuracy']:+.4f}; "
            f"after 1 epoch {ce['test_accuracy_per_epoch'][0]:.4f} against {mse['test_accuracy_per_epoch'][0]:.4f}."
        )
    ce0, mse0 = runs[OPTIMIZER_NAMES[0]]["categorical_crossentropy"], runs[OPTIMIZER_NAMES[0]]["mse"]
    ratio = ce0["initial_gradient_norm"]["output"] / mse0["initial_gradient_norm"]["output"]
    findings.append(
        f"At initialisation the output layer's gradient is {ratio:.1f}x as large with cross-entropy as with mse "
        f"(same weights, same batch): through the softmax, mse's gradient carries the softmax Jacobian "
        f"p_k(δ_kj - p_j), which vanishes as the outputs saturate, even when they are wrong, while "
        f"cross-entropy's gradient with respect to the logits is p - y. Adam divides each step by a running "
        f"gradient scale, which largely cancels this factor; SGD's steps are proportional to it."
    )
    return common.Report(
        results={"runs": runs},
        tables=[
            common.Table(
                "Same model, seed and budget",
                ["training loss", "optimizer"]
                + [f"test acc @ {e}" for e in marks]
                + ["test cross-entropy", "test mse (probabilities)", "‖∂L/∂W_hidden‖ at init", "‖∂L/∂W_out‖ at init"],
                rows,
            )
        ],
        figures={
            "curves.png": "Accuracy (train dashed, test solid) and test cross-entropy (log scale) per epoch "
            "for each training loss and optimizer."
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs, "optimizers": list(OPTIMIZER_NAMES)},
    )
