"""The tutorial's MLP as a Flax module wrapped in pure functions over a params pytree.

Shapes: ``x`` is ``(batch, features)`` float32 in [0, 1]; logits are ``(batch, num_classes)``.
Params: ``{"hidden_0": {"kernel": (in, h0), "bias": (h0,)}, ..., "output": {"kernel": (h_last, C), "bias": (C,)}}``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
import jax.numpy as jnp
from flax import linen as nn

from mlpjax.errors import UserInputError, check_name

Params = Mapping[str, Any]


def step(x: jax.Array) -> jax.Array:
    """Heaviside step: 1 where x > 0, else 0. Its gradient is zero almost everywhere."""
    return (x > 0).astype(x.dtype)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "step": step,
    "tanh": jnp.tanh,
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the MLP: ``input_dim -> hidden... -> num_classes``."""

    input_dim: int = 784
    hidden: tuple[int, ...] = (512,)
    activation: str = "relu"
    dropout: float = 0.2
    num_classes: int = 10

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check_name("activation", self.activation, ACTIVATIONS)
        if self.input_dim < 1:
            raise UserInputError(f"input_dim must be a positive integer, got {self.input_dim}")
        if any(h < 1 for h in self.hidden):
            raise UserInputError(f"--hidden sizes must be positive integers, got {list(self.hidden)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserInputError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.num_classes < 2:
            raise UserInputError(f"num_classes must be at least 2, got {self.num_classes}")


class MLP(nn.Module):
    """Dense(h, act) -> Dropout ... -> Dense(num_classes); returns logits (softmax is in the loss).

    Kernels are Glorot-uniform and biases zero, as Keras' Dense. Dropout is inverted dropout and takes its
    keep-masks explicitly (one ``(batch, h)`` bool array per hidden layer), so that the same masks can be
    handed to the hand-written backward pass in :mod:`mlpjax.backprop`.
    """

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array, masks: Sequence[jax.Array] | None = None) -> jax.Array:
        cfg = self.config
        act = ACTIVATIONS[cfg.activation]
        for i, width in enumerate(cfg.hidden):
            x = nn.Dense(width, kernel_init=nn.initializers.glorot_uniform(), name=f"hidden_{i}")(x)
            x = act(x)
            if masks is not None:
                x = apply_dropout(x, masks[i], cfg.dropout)
        return nn.Dense(cfg.num_classes, kernel_init=nn.initializers.glorot_uniform(), name="output")(x)


def apply_dropout(x: jax.Array, keep: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout: kept units are scaled by ``1 / (1 - rate)``, dropped ones are zero."""
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def dropout_masks(rng: jax.Array, config: ModelConfig, batch_size: int) -> list[jax.Array]:
    """Keep-masks for every hidden layer: ``[(batch_size, h) bool, ...]``, each unit kept with ``1 - rate``.

    Consumes ``rng`` only: layer ``i`` uses ``jax.random.fold_in(rng, i)``.
    """
    keep = 1.0 - config.dropout
    return [
        jax.random.bernoulli(jax.random.fold_in(rng, i), keep, (batch_size, width))
        for i, width in enumerate(config.hidden)
    ]


def init(key: jax.Array, config: ModelConfig) -> Params:
    """Fresh params for ``config``; consumes ``key`` (Glorot-uniform kernels, zero biases)."""
    dummy = jnp.zeros((1, config.input_dim), jnp.float32)
    return MLP(config).init(key, dummy)["params"]


def apply(
    params: Params,
    x: jax.Array,
    *,
    config: ModelConfig,
    train: bool = False,
    rng: jax.Array | None = None,
) -> jax.Array:
    """Logits ``(batch, num_classes)`` for ``x`` ``(batch, input_dim)``.

    With ``train=True`` and a dropout rate above zero, dropout is active and needs ``rng``
    (consumed through :func:`dropout_masks`); otherwise ``rng`` is ignored.
    """
    masks = None
    if train and config.dropout > 0.0:
        if rng is None:
            raise ValueError("apply(train=True) with dropout needs an explicit PRNG key: rng=...")
        masks = dropout_masks(rng, config, x.shape[0])
    return MLP(config).apply({"params": params}, x, masks)


def predict_proba(params: Params, x: jax.Array, *, config: ModelConfig) -> jax.Array:
    """Class probabilities ``(batch, num_classes)``: softmax of the inference-mode logits."""
    return jax.nn.softmax(apply(params, x, config=config), axis=-1)


def one_hot(labels: jax.Array, num_classes: int) -> jax.Array:
    """Integer labels ``(batch,)`` to float32 one-hot ``(batch, num_classes)``, like ``keras.utils.to_categorical``."""
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def param_count(params: Params) -> int:
    """Number of trainable scalars."""
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))


@dataclasses.dataclass(frozen=True)
class Classifier:
    """Trained params bound to their architecture, for prediction: what ``load_model`` returns."""

    params: Params
    config: ModelConfig

    def predict_proba(self, x) -> np.ndarray:
        """Probabilities ``(batch, num_classes)`` for ``x`` ``(batch, input_dim)`` (or one ``(input_dim,)`` image)."""
        x = jnp.asarray(x, jnp.float32)
        single = x.ndim == 1
        probs = _predict_proba_jit(self.params, x[None] if single else x, config=self.config)
        probs = np.asarray(probs)
        return probs[0] if single else probs

    def predict(self, x) -> np.ndarray:
        """Predicted class indices ``(batch,)`` (or one int for one image)."""
        return np.argmax(self.predict_proba(x), axis=-1)


_predict_proba_jit = jax.jit(predict_proba, static_argnames=("config",))
