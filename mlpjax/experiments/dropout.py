"""Dropout 0, 0.2 and 0.5 over 20 epochs: the gap between training and test accuracy (overfitting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import plots
from mlpjax.core.config import TrainConfig
from mlpjax.core.model import ModelConfig
from mlpjax.experiments import common

QUESTION = "Does dropout shrink the gap between training and test accuracy (overfitting)?"
ORDER = 60  # the place of its question in the tutorial
RATES = (0.0, 0.2, 0.5)
FULL_EPOCHS = 20


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: every rate starts from ``seed`` (same initial weights and batch order); the rates train
    together through the sweep engine (:func:`common.train_many`), each with the numbers of its own run.

    Keras' ``accuracy`` is a running mean over the epoch with dropout active, which understates what the
    network knows; the gap is therefore measured with the training set evaluated after each epoch in inference
    mode (no dropout), like the test set.
    """
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    per_rate: dict[str, dict[str, Any]] = {}
    curves = {}
    configs = [
        TrainConfig(dataset=ds.name, model=ModelConfig(dropout=rate), epochs=epochs, seed=seed) for rate in RATES
    ]
    evaluators = [common.EpochEvaluator(c, ds, ds.x_train, ds.y_train) for c in configs]
    sweep = common.train_many(configs, ds, log, on_model_epoch=lambda i, epoch, params: evaluators[i].add(params))
    for rate, result, on_train in zip(RATES, sweep.runs, evaluators, strict=True):
        h = result.history
        train_acc = on_train.series("accuracy")
        gap = [a - b for a, b in zip(train_acc, h["val_accuracy"], strict=True)]
        best = int(np.argmin(h["val_loss"]))
        per_rate[f"{rate:g}"] = {
            "train_accuracy": train_acc[-1],
            "train_loss": on_train.series("loss")[-1],
            "test_accuracy": h["val_accuracy"][-1],
            "gap": gap[-1],
            "keras_train_accuracy": h["accuracy"][-1],
            "best_val_loss": h["val_loss"][best],
            "best_val_loss_epoch": best + 1,
            "final_val_loss": h["val_loss"][-1],
            "train_accuracy_per_epoch": train_acc,
            "gap_per_epoch": gap,
            "history": h,
        }
        curves[f"dropout {rate:g}"] = {**h, "train_accuracy": train_acc, "gap": gap}
        log(
            f"dropout {rate:g}: train {train_acc[-1]:.4f} test {h['val_accuracy'][-1]:.4f} gap {gap[-1]:+.4f}; "
            f"val_loss best {h['val_loss'][best]:.4f} at epoch {best + 1}, final {h['val_loss'][-1]:.4f}"
        )
    plots.training_curves(
        curves,
        out_dir / "curves.png",
        panels=(
            ("accuracy", ("train_accuracy", "val_accuracy")),
            ("train - test accuracy", ("gap",)),
            ("test loss", ("val_loss",)),
        ),
        key_labels={"train_accuracy": "train (inference mode)"},
        title=f"Dropout on {ds.name}: {epochs} epochs, same seed",
    )
    rows = [
        [
            rate,
            f"{r['train_accuracy']:.4f}",
            f"{r['test_accuracy']:.4f}",
            f"{r['gap']:+.4f}",
            f"{r['keras_train_accuracy']:.4f}",
            f"{r['best_val_loss']:.4f} (epoch {r['best_val_loss_epoch']})",
            f"{r['final_val_loss']:.4f}",
        ]
        for rate, r in per_rate.items()
    ]
    lo, hi = f"{RATES[0]:g}", f"{RATES[-1]:g}"
    test_accs = ", ".join(f"{r['test_accuracy']:.4f}" for r in per_rate.values())
    findings = [
        f"After {epochs} epochs the train-test accuracy gap is {per_rate[lo]['gap']:+.4f} without dropout and "
        + ", ".join(f"{per_rate[k]['gap']:+.4f} with {k}" for k in list(per_rate)[1:])
        + f"; test accuracy {test_accs} for rates {', '.join(per_rate)}.",
        f"Without dropout the test loss bottoms out at epoch {per_rate[lo]['best_val_loss_epoch']} "
        f"({per_rate[lo]['best_val_loss']:.4f}) and ends at {per_rate[lo]['final_val_loss']:.4f}; with {hi} it ends "
        f"at {per_rate[hi]['final_val_loss']:.4f} (best {per_rate[hi]['best_val_loss']:.4f} at epoch "
        f"{per_rate[hi]['best_val_loss_epoch']}).",
        f"From dropout {lo} to {hi} the accuracy gap changes by {per_rate[hi]['gap'] - per_rate[lo]['gap']:+.4f} "
        f"and test accuracy by {per_rate[hi]['test_accuracy'] - per_rate[lo]['test_accuracy']:+.4f}; the test "
        f"loss rises after its minimum by {per_rate[lo]['final_val_loss'] - per_rate[lo]['best_val_loss']:+.4f} "
        f"without dropout and by {per_rate[hi]['final_val_loss'] - per_rate[hi]['best_val_loss']:+.4f} with {hi}.",
    ]
    return common.Report(
        results={"rates": per_rate},
        tables=[
            common.Table(
                f"After {epochs} epochs (train accuracy measured without dropout)",
                [
                    "dropout",
                    "train acc",
                    "test acc",
                    "gap (train - test)",
                    "Keras train acc (dropout on)",
                    "best test loss",
                    "final test loss",
                ],
                rows,
            )
        ],
        figures={
            "curves.png": "Per epoch: train (inference mode, dashed) and test (solid) accuracy, their gap, "
            "and the test loss, for each dropout rate."
        },
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs, "rates": list(RATES)},
    )
