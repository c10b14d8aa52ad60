"""The seven Keras optimizers at Keras' default settings, trained on the same budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import plots
from mlpjax.core import optimizers
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common

QUESTION = "How do the seven Keras optimizers, at their default settings, compare on the same budget?"
ORDER = 50  # the place of its question in the tutorial
FULL_EPOCHS = 5


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: every optimizer starts from ``seed`` (same initial weights, batch order and dropout masks)."""
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    per_opt: dict[str, dict[str, Any]] = {}
    histories = {}
    seconds = {}
    for name in optimizers.OPTIMIZERS:
        result = common.fit(TrainConfig(dataset=ds.name, optimizer=name, epochs=epochs, seed=seed), ds, log, name)
        histories[name] = {**result.history, "val_error": [1.0 - a for a in result.history["val_accuracy"]]}
        seconds[name] = float(np.median(result.epoch_seconds))
        per_opt[name] = {
            "learning_rate": optimizers.default_learning_rate(name),
            "test_accuracy": result.test_metrics["accuracy"],
            "test_loss": result.test_metrics["loss"],
            "history": result.history,
        }
        log(f"{name} (lr {per_opt[name]['learning_rate']:g}): test accuracy {result.test_metrics['accuracy']:.4f}")
    ranking = sorted(per_opt, key=lambda n: -per_opt[n]["test_accuracy"])
    error_panel = "test error rate (1 - accuracy)"
    plots.training_curves(
        histories,
        out_dir / "curves.png",
        panels=(("training loss", ("loss",)), (error_panel, ("val_error",))),
        log_panels=("training loss", error_panel),
        title=f"Keras optimizers at their defaults ({ds.name}, {epochs} epochs, same seed)",
    )
    rows = [
        [
            i + 1,
            n,
            f"{per_opt[n]['learning_rate']:g}",
            f"{per_opt[n]['history']['val_accuracy'][0]:.4f}",
            f"{per_opt[n]['test_accuracy']:.4f}",
            f"{per_opt[n]['test_loss']:.4f}",
            f"{per_opt[n]['history']['loss'][-1]:.4f}",
            f"{seconds[n]:.2f}",
        ]
        for i, n in enumerate(ranking)
    ]
    best, worst = ranking[0], ranking[-1]
    slow = [n for n in ranking if per_opt[n]["test_accuracy"] < per_opt[best]["test_accuracy"] - 0.05]
    findings = [
        f"Best after {epochs} epochs: {best} ({per_opt[best]['test_accuracy']:.4f}); worst: {worst} "
        f"({per_opt[worst]['test_accuracy']:.4f}). Order: {', '.join(ranking)}."
    ]
    if slow:
        findings.append(
            f"{', '.join(slow)} trail by more than 0.05: at Keras' defaults (sgd: lr 0.01 without "
            f"momentum; adagrad and adadelta: lr 0.001) they take much smaller effective steps, "
            f"so the same budget leaves them far from converged; this is the defaults, not the methods."
        )
    return common.Report(
        results={"optimizers": per_opt, "ranking": ranking},
        tables=[
            common.Table(
                f"Same model, seed and budget ({epochs} epochs), ranked by test accuracy",
                [
                    "rank",
                    "optimizer",
                    "learning rate",
                    "test acc @ 1",
                    f"test acc @ {epochs}",
                    "test loss",
                    "train loss",
                    "s / epoch",
                ],
                rows,
            )
        ],
        figures={
            "curves.png": "Training loss and test error rate (1 - accuracy) per epoch for each optimizer, log scales."
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs, "batch size": TrainConfig().batch_size},
        timing={"median_epoch_seconds": seconds},
    )
