"""Where the tutorial's model goes wrong: the confusion matrix on the test set and the most confidently wrong
digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from mlpjax import plots
from mlpjax.core import metrics
from mlpjax.core.config import TrainConfig
from mlpjax.experiments import common

QUESTION = "Which digits does the tutorial's model confuse, and which mistakes does it make with confidence?"
ORDER = 80  # the place of its question in the tutorial
FULL_EPOCHS = 2  # the tutorial's model
SHOWN = 20


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """Randomness: ``seed`` (initial weights, batch order, dropout masks); predictions are deterministic."""
    ds = common.load_data(source, quick)
    epochs = common.epochs_for(quick, FULL_EPOCHS)
    result = common.fit(TrainConfig(dataset=ds.name, epochs=epochs, seed=seed), ds, log, "tutorial model")
    probs = result.classifier.predict_proba(ds.x_test)  # (N, C)
    predicted = probs.argmax(axis=1)
    names = list(ds.class_names) or [str(c) for c in range(ds.num_classes)]
    cm = np.asarray(metrics.confusion_matrix(jnp.asarray(ds.y_test), jnp.asarray(predicted), ds.num_classes)).astype(
        int
    )
    accuracy = float(np.trace(cm) / cm.sum())
    wrong = np.flatnonzero(predicted != ds.y_test)
    confident = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:SHOWN]
    errors: list[dict[str, Any]] = [
        {
            "index": int(i),
            "true": int(ds.y_test[i]),
            "predicted": int(predicted[i]),
            "p_predicted": float(probs[i, predicted[i]]),
            "p_true": float(probs[i, ds.y_test[i]]),
        }
        for i in confident
    ]
    off = cm - np.diag(np.diag(cm))
    pairs = sorted(((int(off[t, p]), t, p) for t in range(len(cm)) for p in range(len(cm)) if off[t, p]), reverse=True)[
        :10
    ]
    log(f"test accuracy {accuracy:.4f}: {len(wrong)} of {len(ds.y_test)} test images wrong")
    for e in errors[:5]:
        log(
            f"  test #{e['index']}: true {names[e['true']]}, predicted {names[e['predicted']]} "
            f"with p={e['p_predicted']:.4f} (p(true)={e['p_true']:.4f})"
        )
    plots.confusion_matrix(
        cm,
        out_dir / "confusion_matrix.png",
        class_names=names,
        title=f"{ds.name} test set, {epochs} epochs: accuracy {accuracy:.4f}",
    )
    if errors:
        plots.image_grid(
            ds.x_test[confident],
            out_dir / "confident_errors.png",
            image_shape=ds.image_shape or (1, ds.input_dim),
            ncols=5,
            titles=[
                f"#{e['index']}: {names[e['true']]} -> {names[e['predicted']]}\np={e['p_predicted']:.3f}"
                for e in errors
            ],
            title_colors=["firebrick"] * len(errors),
            title=f"The {len(errors)} most confidently wrong test images (true -> predicted)",
        )
    recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    precision = np.diag(cm) / np.maximum(cm.sum(axis=0), 1)
    class_rows = [
        [
            names[c],
            int(cm[c].sum()),
            f"{recall[c]:.4f}",
            f"{precision[c]:.4f}",
            f"{names[int(off[c].argmax())]} ({int(off[c].max())})" if off[c].any() else "-",
        ]
        for c in range(len(cm))
    ]
    hardest = int(np.argmin(recall))
    findings = [
        f"Test accuracy {accuracy:.4f}: {len(wrong)} errors in {len(ds.y_test)} test images; the hardest "
        f"class is {names[hardest]} (recall {recall[hardest]:.4f}), the easiest "
        f"{names[int(np.argmax(recall))]} (recall {recall.max():.4f})."
    ]
    if pairs:
        findings.append(
            "Most frequent confusions (true -> predicted): "
            + ", ".join(f"{names[t]} -> {names[p]} ({n})" for n, t, p in pairs[:5])
            + "."
        )
    if errors:
        sure = sum(e["p_predicted"] > 0.9 for e in errors)
        findings.append(
            f"{sum(probs[wrong, predicted[wrong]] > 0.9)} of the {len(wrong)} errors are made with "
            f"p > 0.9; the {len(errors)} shown here have p = {errors[-1]['p_predicted']:.3f} to "
            f"{errors[0]['p_predicted']:.3f} ({sure} above 0.9)."
        )
    figures = {
        "confusion_matrix.png": "Confusion matrix on the test set (row: true digit, column: predicted; "
        "log colour scale, counts written in each cell)."
    }
    if errors:
        figures["confident_errors.png"] = (
            "The most confidently wrong test images: test index, true -> predicted, "
            "and the probability given to the wrong class."
        )
    return common.Report(
        results={
            "accuracy": accuracy,
            "confusion_matrix": cm.tolist(),
            "errors": int(len(wrong)),
            "most_confident_errors": errors,
            "top_confusions": [{"true": t, "predicted": p, "count": n} for n, t, p in pairs],
            "recall": recall.tolist(),
            "precision": precision.tolist(),
            "history": result.history,
        },
        tables=[
            common.Table(
                "Per class",
                ["class", "test images", "recall", "precision", "most common wrong prediction (count)"],
                class_rows,
            ),
            common.Table(
                "Most confidently wrong",
                ["test index", "true", "predicted", "p(predicted)", "p(true)"],
                [
                    [
                        e["index"],
                        names[e["true"]],
                        names[e["predicted"]],
                        f"{e['p_predicted']:.4f}",
                        f"{e['p_true']:.4f}",
                    ]
                    for e in errors
                ],
            ),
        ],
        figures=figures,
        findings=findings,
        dataset=common.describe(ds),
        budget={"epochs": epochs},
    )
