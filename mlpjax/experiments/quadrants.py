"""The tutorial's toy network: four points, one per quadrant, a 2-50-4 ReLU/softmax MLP trained with
cross-entropy; the shapes of X, H and Y, the probabilities, the class of (2, 2) and the decision regions."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np

from mlpjax import data, plots
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.model import ModelConfig
from mlpjax.experiments import common

QUESTION = "Does a 2-50-4 network learn the four quadrants, and which class does it give (2, 2)?"
ORDER = 20  # the place of its question in the tutorial
OWN_DATA = True  # trains on the four quadrants' points only: a dataset given to it is refused
QUERY = (2.0, 2.0)


def hidden_layer(params: model.Params, x: np.ndarray, model_config: model.ModelConfig) -> np.ndarray:
    """``H = act(X W + b)`` ``(N, hidden)``: the first hidden layer applied with the trained params."""
    return np.asarray(model.hidden_outputs(params, jnp.asarray(x), model_config=model_config)[0])


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: ``seed`` (initial weights; one full batch per epoch, so shuffling does not matter).
    The quick run is the full run: four points train in about a second once compiled. ``source`` is not used
    (:data:`OWN_DATA`)."""
    del source
    ds = data.load_dataset("quadrants")
    config = TrainConfig(
        dataset="quadrants",
        model=ModelConfig(hidden=(50,), activation="relu", dropout=0.0),
        loss="categorical_crossentropy",
        seed=seed,
    )
    result = common.fit(config, ds, lambda _: None, "quadrants")
    params, mcfg = result.state.params, result.state.model_config
    x = ds.x_train
    h = hidden_layer(params, x, mcfg)
    y = np.asarray(model.predict_proba(params, jnp.asarray(x), model_config=mcfg))
    names = ds.class_names
    query = np.array(QUERY, np.float32)
    classifier = model.Classifier(params, mcfg)
    query_probs = classifier.predict_proba(query)
    query_class = names[int(classifier.predict(query))]
    log(f"X {x.shape}  H {h.shape}  Y {y.shape}")
    for point, label, probs in zip(x, ds.y_train, y, strict=True):
        log(
            f"  ({point[0]:+g}, {point[1]:+g}) quadrant {names[label]}: "
            + "  ".join(f"p({n})={p:.4f}" for n, p in zip(names, probs, strict=True))
        )
    log(f"(2, 2) -> quadrant {query_class} (p={float(query_probs.max()):.4f})")
    predicted = y.argmax(axis=1)
    plots.decision_regions(
        classifier.predict,
        x,
        ds.y_train,
        out_dir / "decision_regions.png",
        class_names=names,
        queries=query[None],
        title=f"2-50-4 ReLU network after {config.epochs} epochs (Adam)",
    )
    plots.training_curves(
        {"2-50-4": result.history},
        out_dir / "training.png",
        panels=(("loss", ("loss",)), ("accuracy", ("accuracy",))),
        log_panels=("loss",),
        title="Training on the four points",
    )
    results = {
        "shapes": {"X": list(x.shape), "H": list(h.shape), "Y": list(y.shape)},
        "points": x.tolist(),
        "labels": [names[i] for i in ds.y_train],
        "probabilities": y.tolist(),
        "predicted": [names[i] for i in predicted],
        "query": list(QUERY),
        "query_probabilities": query_probs.tolist(),
        "query_class": query_class,
        "hidden_active_units": int((h > 0).any(axis=0).sum()),
        "final_loss": result.history["loss"][-1],
        "accuracy": result.test_metrics["accuracy"],
    }
    rows = [
        [f"({p[0]:g}, {p[1]:g})", names[t]] + [f"{v:.4f}" for v in probs] + [names[k]]
        for p, t, probs, k in zip(x, ds.y_train, y, predicted, strict=True)
    ]
    rows.append([f"({QUERY[0]:g}, {QUERY[1]:g})", "I"] + [f"{v:.4f}" for v in query_probs] + [query_class])
    findings = [
        f"Shapes: X {tuple(x.shape)}, H = relu(X W1 + b1) {tuple(h.shape)}, Y = softmax(H W2 + b2) "
        f"{tuple(y.shape)} ({results['hidden_active_units']} of 50 hidden units active on some point).",
        f"After {config.epochs} epochs the loss is {results['final_loss']:.4f} and all four points are "
        f"{'correctly' if results['accuracy'] == 1.0 else 'NOT all correctly'} classified "
        f"(accuracy {results['accuracy']:.2f}); (2, 2) is put in quadrant {query_class} "
        f"with probability {float(query_probs.max()):.4f}.",
    ]
    return common.Report(
        results=results,
        tables=[
            common.Table(
                "Probabilities per point", ["point", "quadrant"] + [f"p({n})" for n in names] + ["predicted"], rows
            )
        ],
        figures={
            "decision_regions.png": "Decision regions of the trained 2-50-4 network; the star is (2, 2).",
            "training.png": "Training loss (log scale) and accuracy on the four points.",
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": config.epochs, "hidden": list(config.model.hidden), "optimizer": config.optimizer},
        timing={"compile_seconds": result.compile_seconds},
    )
