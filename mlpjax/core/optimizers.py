"""Optimizers by their Keras names, built with optax at Keras 3's default hyperparameters.

To add one, add a line to :data:`OPTIMIZERS`: the command line's choices and help come from it."""

from __future__ import annotations

import functools
from collections.abc import Callable

import optax

from mlpjax.errors import check_name, check_number

# name -> (Keras' default learning rate, builder taking the learning rate)
OPTIMIZERS: dict[str, tuple[float, Callable[[float], optax.GradientTransformation]]] = {
    "sgd": (0.01, lambda lr: optax.sgd(lr)),
    "adam": (1e-3, lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-7)),
    "adagrad": (1e-3, lambda lr: optax.adagrad(lr, initial_accumulator_value=0.1, eps=1e-7)),
    "rmsprop": (1e-3, lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-7)),
    "adadelta": (1e-3, lambda lr: optax.adadelta(lr, rho=0.95, eps=1e-7)),
    "adamax": (1e-3, lambda lr: optax.adamax(lr, b1=0.9, b2=0.999, eps=1e-7)),
    "nadam": (1e-3, lambda lr: optax.nadam(lr, b1=0.9, b2=0.999, eps=1e-7)),
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
