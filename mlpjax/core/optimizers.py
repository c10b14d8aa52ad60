"""Optimizers by their Keras names, with Keras 3's update rules and default hyperparameters.

``adam`` and ``nadam`` are Keras' own rules (:func:`scale_by_keras_adam`, :func:`scale_by_keras_nadam`), which
differ from optax's: Keras adds ε to √v before Adam's bias correction, and Nadam follows Dozat's momentum
schedule. optax's are kept as ``optax_adam`` and ``optax_nadam``. The others are optax's, whose rules are Keras'
(sgd without momentum, adagrad, rmsprop, adadelta, adamax). docs/training.md says how each was checked.

Every builder takes its learning rate as optax's aliases do: a float, a (traced) array, or an optax schedule of
the step count. To add an optimizer, add a line to :data:`OPTIMIZERS` (and its Keras comparison to
tests/core/test_keras_parity.py): the command line's choices and help come from it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mlpjax.errors import check_name, check_number

KERAS_EPSILON = 1e-7  # Keras 3's default epsilon of every optimizer
NADAM_DECAY = 0.96  # Keras' (Dozat's) momentum schedule: u_t = beta_1 * (1 - 0.5 * 0.96 ** t)


class KerasAdamState(NamedTuple):
    """State of :func:`scale_by_keras_adam`: ``count`` steps taken (int32), first and second moments ``mu``,
    ``nu`` (trees like the params)."""

    count: jax.Array  # type: ignore[assignment]  # optax's states name the step counter so; shadows tuple.count
    mu: optax.Updates
    nu: optax.Updates


class KerasNadamState(NamedTuple):
    """State of :func:`scale_by_keras_nadam`: :class:`KerasAdamState`'s fields and ``u_product``, the running
    product of the momentum schedule u_1 ... u_count (float32, 1 before the first step)."""

    count: jax.Array  # type: ignore[assignment]  # as KerasAdamState's
    mu: optax.Updates
    nu: optax.Updates
    u_product: jax.Array


def _moments(grads, mu, nu, b1: float, b2: float):
    """Keras' moment updates: m += (g - m)(1 - b1), v += (g² - v)(1 - b2)."""
    mu = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - b1), mu, grads)
    nu = jax.tree_util.tree_map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), nu, grads)
    return mu, nu


def _zeros(params):
    return jax.tree_util.tree_map(jnp.zeros_like, params)


def scale_by_keras_adam(b1: float = 0.9, b2: float = 0.999, eps: float = KERAS_EPSILON) -> optax.GradientTransformation:
    """Keras 3's Adam direction, to be scaled by the learning rate: at step t (1-based),
    ``m·sqrt(1 − b2^t)/(1 − b1^t) / (sqrt(v) + eps)``, ε added to √v *before* the bias correction ("epsilon
    hat"; optax adds it after). Deterministic; state :class:`KerasAdamState`."""

    def init(params):
        return KerasAdamState(jnp.zeros([], jnp.int32), _zeros(params), _zeros(params))

    def update(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        t = count.astype(jnp.float32)
        mu, nu = _moments(updates, state.mu, state.nu, b1, b2)
        alpha = jnp.sqrt(1 - jnp.power(jnp.float32(b2), t)) / (1 - jnp.power(jnp.float32(b1), t))
        direction = jax.tree_util.tree_map(lambda m, v: (m * alpha) / (jnp.sqrt(v) + eps), mu, nu)
        return direction, KerasAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def scale_by_keras_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = KERAS_EPSILON
) -> optax.GradientTransformation:
    """Keras 3's Nadam direction, to be scaled by the learning rate. With u_t = b1·(1 − 0.5·0.96^t) and
    U_t = u_1···u_t at step t (1-based): ``m̂ = u_{t+1}·m/(1 − U_t·u_{t+1}) + (1 − u_t)·g/(1 − U_t)``,
    ``v̂ = v/(1 − b2^t)``, direction ``m̂/(sqrt(v̂) + eps)`` (optax.nadam uses a constant b1 instead).
    Deterministic; state :class:`KerasNadamState`."""

    def init(params):
        return KerasNadamState(jnp.zeros([], jnp.int32), _zeros(params), _zeros(params), jnp.ones([], jnp.float32))

    def update(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        t = count.astype(jnp.float32)
        decay, beta_1 = jnp.float32(NADAM_DECAY), jnp.float32(b1)
        u_t = beta_1 * (1.0 - 0.5 * jnp.power(decay, t))
        u_next = beta_1 * (1.0 - 0.5 * jnp.power(decay, t + 1))
        u_product = state.u_product * u_t
        u_product_next = u_product * u_next
        mu, nu = _moments(updates, state.mu, state.nu, b1, b2)
        v_scale = 1 - jnp.power(jnp.float32(b2), t)

        def direction(m, v, g):
            m_hat = u_next * m / (1 - u_product_next) + (1 - u_t) * g / (1 - u_product)
            return m_hat / (jnp.sqrt(v / v_scale) + eps)

        return jax.tree_util.tree_map(direction, mu, nu, updates), KerasNadamState(count, mu, nu, u_product)

    return optax.GradientTransformation(init, update)


def keras_adam(
    learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = KERAS_EPSILON
) -> optax.GradientTransformation:
    """Keras 3's ``Adam(learning_rate)`` (no amsgrad); ``learning_rate`` a float, array or schedule."""
    return optax.chain(scale_by_keras_adam(b1, b2, eps), optax.scale_by_learning_rate(learning_rate))


def keras_nadam(
    learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = KERAS_EPSILON
) -> optax.GradientTransformation:
    """Keras 3's ``Nadam(learning_rate)``; ``learning_rate`` a float, array or schedule."""
    return optax.chain(scale_by_keras_nadam(b1, b2, eps), optax.scale_by_learning_rate(learning_rate))


# name -> (Keras' default learning rate, builder taking the learning rate as `lr`: float, array or schedule).
# The builders' argument is called `lr`: optax.inject_hyperparams(build)(lr) keeps it as hyperparams["lr"].
OPTIMIZERS: dict[str, tuple[float, Callable[[optax.ScalarOrSchedule], optax.GradientTransformation]]] = {
    "sgd": (0.01, lambda lr: optax.sgd(lr)),
    "adam": (1e-3, lambda lr: keras_adam(lr)),
    "adagrad": (1e-3, lambda lr: optax.adagrad(lr, initial_accumulator_value=0.1, eps=1e-7)),
    "rmsprop": (1e-3, lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-7)),
    "adadelta": (1e-3, lambda lr: optax.adadelta(lr, rho=0.95, eps=1e-7)),
    "adamax": (1e-3, lambda lr: optax.adamax(lr, b1=0.9, b2=0.999, eps=1e-7)),
    "nadam": (1e-3, lambda lr: keras_nadam(lr)),
    # optax's own rules at Keras' defaults (not Keras' rules: see the module's docstring)
    "optax_adam": (1e-3, lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-7)),
    "optax_nadam": (1e-3, lambda lr: optax.nadam(lr, b1=0.9, b2=0.999, eps=1e-7)),
}


def default_learning_rate(name: str) -> float:
    """Keras' default learning rate for optimizer ``name``."""
    return OPTIMIZERS[check_name("optimizer", name, OPTIMIZERS)][0]


def learning_rate(name: str, lr: float | None = None) -> float:
    """``lr``, checked positive, or Keras' default for optimizer ``name`` when None (the one rule for both)."""
    return default_learning_rate(name) if lr is None else check_number("lr", lr, low=0.0, low_open=True)


@functools.lru_cache(maxsize=64)
def get_optimizer(name: str, lr: float | None = None) -> optax.GradientTransformation:
    """The optax transformation for Keras optimizer ``name``; ``lr`` overrides Keras' default. The same
    arguments give the same object (a pure transformation), so states that share it share compilations."""
    return OPTIMIZERS[check_name("optimizer", name, OPTIMIZERS)][1](learning_rate(name, lr))
