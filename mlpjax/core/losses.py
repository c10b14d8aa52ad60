"""Losses by their Keras names, and the model's pure training loss.

Every loss maps logits ``(batch, C)`` and one-hot targets ``(batch, C)`` to a per-example loss ``(batch,)``.
As with Keras' ``Dense(10, activation="softmax")``, the output layer is a softmax: losses other than
cross-entropy are taken on the probabilities. Categorical cross-entropy is computed from the logits (stable, as
Keras on TensorFlow); binary cross-entropy from the probabilities clipped to [1e-7, 1 - 1e-7] (as Keras on JAX).
docs/training.md says why. Every Keras 3 name of a loss is accepted (:data:`ALIASES`) and resolves to one name
of :data:`LOSSES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from mlpjax.core import model
from mlpjax.errors import check_name

# Keras clips probabilities to [eps, 1 - eps] before taking logs.
_KERAS_EPSILON = 1e-7


def categorical_crossentropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy(logits, targets)


def mse(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(jax.nn.softmax(logits) - targets), axis=-1)


def binary_crossentropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    p = jnp.clip(jax.nn.softmax(logits), _KERAS_EPSILON, 1.0 - _KERAS_EPSILON)
    return -jnp.mean(targets * jnp.log(p) + (1.0 - targets) * jnp.log1p(-p), axis=-1)


def hinge(logits: jax.Array, targets: jax.Array) -> jax.Array:
    # Keras maps 0/1 targets to -1/+1, then mean(max(0, 1 - y * p)).
    signs = 2.0 * targets - 1.0
    return jnp.mean(optax.hinge_loss(jax.nn.softmax(logits), signs), axis=-1)


def huber_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return jnp.mean(optax.huber_loss(jax.nn.softmax(logits), targets, delta=1.0), axis=-1)


LOSSES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "categorical_crossentropy": categorical_crossentropy,
    "mse": mse,
    "binary_crossentropy": binary_crossentropy,
    "hinge": hinge,
    "huber_loss": huber_loss,
}


# Keras 3's other names of the losses above (keras.losses.get accepts them all), and the tutorial's huber_loss,
# which is the canonical name here: alias -> name in LOSSES.
ALIASES: dict[str, str] = {
    "CategoricalCrossentropy": "categorical_crossentropy",
    "mean_squared_error": "mse",
    "MSE": "mse",
    "MeanSquaredError": "mse",
    "bce": "binary_crossentropy",
    "BCE": "binary_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "Hinge": "hinge",
    "huber": "huber_loss",
    "Huber": "huber_loss",
}


def canonical(name: str) -> str:
    """The name in :data:`LOSSES` of loss ``name`` (a Keras name or alias); an unknown name lists the valid ones."""
    if isinstance(name, str) and name in ALIASES:
        return ALIASES[name]
    return check_name("loss", name, [*LOSSES, *ALIASES])


def get_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The per-example loss called ``name`` (a Keras name or alias); an unknown name lists the valid ones."""
    return LOSSES[canonical(name)]


def weighted_mean(values: jax.Array, weight: jax.Array | None) -> jax.Array:
    """Mean of ``values`` ``(batch,)`` over examples of non-zero ``weight`` (padding has weight 0)."""
    if weight is None:
        return jnp.mean(values)
    return jnp.sum(values * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def loss(
    params: model.Params,
    batch: dict[str, jax.Array],
    rng: jax.Array | None,
    *,
    model_config: model.ModelConfig,
    loss_name: str = "categorical_crossentropy",
    train: bool = True,
    dropout_rate: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, Any]]:
    """Mean loss over ``batch`` and ``aux = {"logits", "accuracy"}``.

    ``batch``: ``image`` ``(B, input_dim)`` float32, ``label`` ``(B,)`` int, optional ``weight`` ``(B,)``
    (0 for padding). With ``train=True`` dropout is active and consumes ``rng``; ``dropout_rate`` (may be
    traced) replaces ``model_config.dropout`` (see :func:`mlpjax.core.model.apply`).
    """
    logits = model.apply(
        params, batch["image"], model_config=model_config, train=train, rng=rng, dropout_rate=dropout_rate
    )
    targets = model.one_hot(batch["label"], model_config.num_classes)
    weight = batch.get("weight")
    value = weighted_mean(get_loss(loss_name)(logits, targets), weight)
    correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
    return value, {"logits": logits, "accuracy": weighted_mean(correct, weight)}
