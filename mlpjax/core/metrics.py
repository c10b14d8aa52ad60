"""Metrics by their Keras names, computed as Keras 3 computes them, from sums over the evaluated examples.

* ``accuracy`` (Keras' ``CategoricalAccuracy``): the argmax is the label; from the confusion matrix.
* ``precision``, ``recall`` (Keras' ``Precision()``, ``Recall()``): every softmax output above 0.5 is a positive,
  counts pooled over all classes: precision = hits / outputs above 0.5, recall = hits / examples, where a hit is
  an example whose true class has p > 0.5 (:func:`threshold_counts`).
* ``f1_score`` (Keras' ``F1Score()``, ``average=None``): one F1 per class of the argmax (the confusion matrix),
  with Keras' epsilons; recorded as ``f1_score_0`` ... ``f1_score_<C-1>`` (:func:`result_keys`).
* ``precision_macro``, ``recall_macro``, ``f1_macro``: the unweighted means over classes of the argmax's
  per-class scores (scikit-learn's ``average="macro"``; f1_macro is Keras' ``F1Score(average="macro")``).
* ``mse``, ``mae``: the softmax probabilities against one-hot targets (Keras' ``MeanSquaredError`` ...).

Keras' other names of these (``acc``, ``mean_squared_error``, ``MAE``, ``F1Score``, ...) are accepted and
recorded as the names above (:data:`ALIASES`).

A metric registered from the user's code (:func:`mlpjax.plugins.register_metric`) is a per-example function of
the probabilities and the one-hot targets, averaged over the evaluated examples as ``mse`` is: it is
:data:`METRICS`' entry of that name (the built-ins' entries are None: they are computed from the sums above).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.errors import FieldError, check_name

# name -> None for a built-in (computed from the evaluation sums), or a registered per-example metric
# fn(probs (B, C), targets (B, C)) -> (B,), whose weighted mean over the examples is the metric
METRICS: dict[str, Callable[[jax.Array, jax.Array], jax.Array] | None] = dict.fromkeys(
    ("accuracy", "precision", "recall", "f1_score", "precision_macro", "recall_macro", "f1_macro", "mse", "mae")
)
# The names a user may give besides METRICS' (Keras 3's, and mlpjax's f1): alias -> name in METRICS.
# (Keras' "Accuracy" is exact equality of y_true and y_pred, not CategoricalAccuracy: not an alias.)
ALIASES = {
    "acc": "accuracy",
    "categorical_accuracy": "accuracy",
    "CategoricalAccuracy": "accuracy",
    "Precision": "precision",
    "Recall": "recall",
    "F1Score": "f1_score",
    "f1": "f1_score",
    "mean_squared_error": "mse",
    "MSE": "mse",
    "MeanSquaredError": "mse",
    "mean_absolute_error": "mae",
    "MAE": "mae",
    "MeanAbsoluteError": "mae",
}
EXAMPLE_KEY = "metric:"  # the evaluation sums of a registered metric NAME are under metric:NAME
THRESHOLD = 0.5  # Keras' Precision() and Recall() default threshold
_KERAS_EPSILON = 1e-7  # keras.backend.epsilon(), in F1Score's divisions


def check_names(names) -> tuple[str, ...]:
    """``names`` (a sequence, or one comma-separated string) as METRICS' names, in order, without repeats
    (aliases resolved); an unknown name is a FieldError of ``metrics`` that lists the valid ones."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    out = []
    for name in names:
        canonical = ALIASES.get(str(name).strip(), str(name).strip())
        if canonical not in METRICS:
            raise FieldError(
                "metrics",
                f"{{field}}: unknown metric {name!r}; valid: {', '.join(METRICS)} "
                f"(or a Keras alias: {', '.join(ALIASES)})",
            )
        if canonical not in out:
            out.append(canonical)
    return tuple(out)


def example_metrics() -> tuple[str, ...]:
    """The names of the registered per-example metrics (:data:`METRICS`' entries that are functions), in order:
    every evaluation computes them (a static argument of :func:`mlpjax.training.steps.eval_step`)."""
    return tuple(name for name, fn in METRICS.items() if fn is not None)


def example_sums(
    names: tuple[str, ...], probs: jax.Array, targets: jax.Array, weight: jax.Array
) -> dict[str, jax.Array]:
    """The weighted sums over a batch of the per-example metrics ``names`` (:func:`example_metrics`), each under
    ``metric:NAME`` (:data:`EXAMPLE_KEY`) among the evaluation sums."""
    return {EXAMPLE_KEY + name: jnp.sum(METRICS[name](probs, targets) * weight) for name in names}  # type: ignore[misc]


def result_keys(name: str, num_classes: int) -> tuple[str, ...]:
    """The keys under which metric ``name`` (of METRICS) is recorded: ``f1_score_0`` ... for the per-class
    ``f1_score``, else ``name`` itself."""
    if name == "f1_score":
        return tuple(f"f1_score_{c}" for c in range(num_classes))
    return (name,)


def per_class(cm: np.ndarray) -> dict[str, list[float]]:
    """Per-class ``precision``, ``recall`` and ``support`` (true examples) from a ``(C, C)`` confusion matrix
    (row: true class); a class never predicted (or never seen) has precision (recall) 0."""
    cm = np.asarray(cm, np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    return {"precision": precision.tolist(), "recall": recall.tolist(), "support": actual.tolist()}


def confusion_matrix(
    labels: jax.Array, predictions: jax.Array, num_classes: int, weight: jax.Array | None = None
) -> jax.Array:
    """``(C, C)`` counts: row = true class, column = predicted class. Padding (weight 0) is not counted."""
    w = jnp.ones(labels.shape, jnp.float32) if weight is None else weight
    flat = labels * num_classes + predictions
    return jnp.zeros(num_classes * num_classes, jnp.float32).at[flat].add(w).reshape(num_classes, num_classes)


def from_confusion(cm: np.ndarray) -> dict[str, float]:
    """From a ``(C, C)`` confusion matrix: ``accuracy``, ``precision_macro``, ``recall_macro`` (classes never
    predicted or never seen count as 0), and Keras' ``F1Score()``: ``f1_score_<c>`` per class and their mean
    ``f1_macro``."""
    cm = np.asarray(cm, np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    scores = per_class(cm)
    # Keras' FBetaScore.result, beta = 1: its epsilons keep 0/0 at 0
    precision, recall = tp / (predicted + _KERAS_EPSILON), tp / (actual + _KERAS_EPSILON)
    f1 = 2 * (precision * recall) / (precision + recall + _KERAS_EPSILON)
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1.0)),
        "precision_macro": float(np.mean(scores["precision"])),
        "recall_macro": float(np.mean(scores["recall"])),
        "f1_macro": float(f1.mean()),
        **{f"f1_score_{c}": float(v) for c, v in enumerate(f1)},
    }


def threshold_counts(probs: jax.Array, labels: jax.Array, weight: jax.Array) -> dict[str, jax.Array]:
    """Keras' ``Precision()``/``Recall()`` counts over a batch (weighted; padding has weight 0): ``above``,
    the outputs above :data:`THRESHOLD` (true + false positives, all classes pooled), and ``hits``, the
    examples whose true class is above it (true positives; each example has one true class, so true positives
    + false negatives is the example count). ``probs`` ``(B, C)``, ``labels`` ``(B,)``."""
    above = jnp.sum((probs > THRESHOLD).astype(jnp.float32), axis=-1)
    true_p = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return {"above": jnp.sum(above * weight), "hits": jnp.sum((true_p > THRESHOLD).astype(jnp.float32) * weight)}


def from_threshold_counts(above: float, hits: float, count: float) -> dict[str, float]:
    """Keras' ``precision`` and ``recall`` from :func:`threshold_counts`' sums over ``count`` examples (0 where
    nothing is above the threshold, as Keras' divide_no_nan)."""
    return {"precision": float(hits / above) if above > 0 else 0.0, "recall": float(hits / count) if count > 0 else 0.0}


def probability_errors(probs: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Per-example ``mse`` and ``mae`` ``(batch,)`` between probabilities and one-hot targets."""
    diff = probs - targets
    return {"mse": jnp.mean(jnp.square(diff), -1), "mae": jnp.mean(jnp.abs(diff), -1)}


def select(results: dict[str, float], names: list[str]) -> dict[str, float]:
    """The metrics called ``names`` from ``results`` (``f1_score``: every ``f1_score_<c>``); an unknown name
    lists the valid ones."""
    out = {}
    for n in names:
        check_name("metric", n, METRICS)
        keys = [k for k in results if k.startswith("f1_score_")] if n == "f1_score" else [n]
        out.update({k: results[k] for k in keys})
    return out
