"""Metrics by their Keras names, computed from a confusion matrix and probability errors.

Accuracy, precision, recall and F1 (macro: the unweighted mean over classes) come from the confusion matrix;
mse and mae compare the softmax probabilities with one-hot targets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.errors import FieldError, check_name

METRICS = ("accuracy", "precision", "recall", "f1_score", "mse", "mae")
ALIASES = {"f1": "f1_score"}  # the names a user may give besides METRICS'


def check_names(names) -> tuple[str, ...]:
    """``names`` (a sequence, or one comma-separated string) as METRICS' names, in order, without repeats
    (``f1`` is ``f1_score``); an unknown name is a FieldError of ``metrics`` that lists the valid ones."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for name in names:
        canonical = ALIASES.get(str(name).strip(), str(name).strip())
        if canonical not in METRICS:
            raise FieldError("metrics", f"{{field}}: unknown metric {name!r}; valid: accuracy, precision, recall, "
                             "f1, mse, mae")
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def per_class(cm: np.ndarray) -> dict[str, list[float]]:
    """Per-class ``precision``, ``recall`` and ``support`` (true examples) from a ``(C, C)`` confusion matrix
    (row: true class); a class never predicted (or never seen) has precision (recall) 0."""
    cm = np.asarray(cm, np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "support": actual.tolist()}


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
