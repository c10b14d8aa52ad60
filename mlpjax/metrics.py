"""Metrics by their Keras names, computed from a confusion matrix and probability errors.

Accuracy, precision, recall and F1 (macro: the unweighted mean over classes) come from the confusion matrix;
mse and mae compare the softmax probabilities with one-hot targets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.errors import check_name

METRICS = ("accuracy", "precision", "recall", "f1_score", "mse", "mae")


def confusion_matrix(labels: jax.Array, predictions: jax.Array, num_classes: int,
                     weight: jax.Array | None = None) -> jax.Array:
    """``(C, C)`` counts: row = true class, column = predicted class. Padding (weight 0) is not counted."""
    w = jnp.ones(labels.shape, jnp.float32) if weight is None else weight
    flat = labels * num_classes + predictions
    return jnp.zeros(num_classes * num_classes, jnp.float32).at[flat].add(w).reshape(num_classes, num_classes)


def from_confusion(cm: np.ndarray) -> dict[str, float]:
    """Accuracy and macro precision, recall, F1 from a confusion matrix (classes never seen count as 0)."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1.0)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1_score": float(f1.mean()),
    }


def probability_errors(probs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Per-example ``mse`` and ``mae`` ``(batch,)`` between probabilities and one-hot targets."""
    diff = probs - targets
    return {"mse": jnp.mean(jnp.square(diff), -1), "mae": jnp.mean(jnp.abs(diff), -1)}


def select(results: dict[str, float], names: list[str]) -> dict[str, float]:
    """The metrics called ``names`` from ``results``; an unknown name lists the valid ones."""
    return {n: results[check_name("metric", n, METRICS)] for n in names}
