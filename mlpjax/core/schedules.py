"""Learning rates: schedules by name over the planned steps, and the optimizer a config trains with.

A schedule maps the optimizer step (0-based) to a learning rate and decays over ``epochs * steps_per_epoch``
steps, the planned run. To add one, add a line to :data:`SCHEDULES`: the command line's choices and help come
from it. With ``reduce_lr_on_plateau``, the optimizer is followed by ``optax.scale`` of a factor held in the
optimizer state (``inject_hyperparams``), so that a plateau changes an array, not the compiled epoch.

The default (``constant``, no plateau) is exactly :func:`mlpjax.core.optimizers.get_optimizer`'s transformation: the
same computation, bit for bit, as without this module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

from mlpjax.core import optimizers

Schedule = Callable[[int], float]
WARMUP_FRACTION = 0.05  # warmup-cosine: the first 5 % of the steps (at least one) ramp up from 0
EXPONENTIAL_END = 0.01  # exponential: the learning rate ends at 1 % of its initial value


class ScheduleSpec(NamedTuple):
    about: str
    build: Callable[[float, int], optax.Schedule]  # (peak learning rate, total steps) -> schedule


SCHEDULES: dict[str, ScheduleSpec] = {
    "constant": ScheduleSpec("the learning rate throughout", lambda lr, total: optax.constant_schedule(lr)),
    "cosine": ScheduleSpec(
        "cosine decay to 0 over the planned epochs",
        lambda lr, total: optax.cosine_decay_schedule(lr, decay_steps=total),
    ),
    "exponential": ScheduleSpec(
        f"exponential decay to {EXPONENTIAL_END:g} x lr over the planned epochs",
        lambda lr, total: optax.exponential_decay(lr, transition_steps=total, decay_rate=EXPONENTIAL_END),
    ),
    "warmup-cosine": ScheduleSpec(
        f"linear warmup from 0 over the first {WARMUP_FRACTION:.0%} of the steps, then cosine decay to 0",
        lambda lr, total: optax.warmup_cosine_decay_schedule(
            0.0, lr, warmup_steps=max(1, int(WARMUP_FRACTION * total)), decay_steps=max(total, 2)
        ),
    ),
}


def base_lr(config) -> float:
    """The configured learning rate (``config.lr``, else Keras' default for the optimizer)."""
    return optimizers.default_learning_rate(config.optimizer) if config.lr is None else config.lr


def schedule_for(config, steps_per_epoch: int) -> Schedule:
    """``config.lr_schedule`` over ``config.epochs * steps_per_epoch`` steps: step -> learning rate."""
    return SCHEDULES[config.lr_schedule].build(base_lr(config), max(1, config.epochs * steps_per_epoch))


def make_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax transformation ``config`` trains with, for epochs of ``steps_per_epoch`` steps (its
    structure, and so a checkpoint's optimizer state, does not depend on ``steps_per_epoch``). The same
    settings give the same object, so models that differ only in seed share one compiled epoch."""
    scheduled = config.lr_schedule != "constant"
    return _optimizer(
        config.optimizer,
        config.lr,
        config.lr_schedule,
        config.epochs if scheduled else 0,
        steps_per_epoch if scheduled else 0,
        config.reduce_lr_on_plateau,
    )


@functools.lru_cache(maxsize=64)
def _optimizer(
    optimizer: str, lr: float | None, lr_schedule: str, epochs: int, steps_per_epoch: int, plateau: bool
) -> optax.GradientTransformation:
    if lr_schedule == "constant":
        tx = optimizers.get_optimizer(optimizer, lr)
    else:
        base = optimizers.learning_rate(optimizer, lr)
        tx = optimizers.OPTIMIZERS[optimizer][1](SCHEDULES[lr_schedule].build(base, max(1, epochs * steps_per_epoch)))
    if plateau:
        tx = optax.chain(tx, optax.inject_hyperparams(optax.scale)(step_size=1.0))
    return tx


def make_group_optimizer(config, steps_per_epoch: int) -> optax.GradientTransformation:
    """:func:`make_optimizer`'s transformation for a model of a vmapped group: the same update rule, schedule and
    plateau, with the base learning rate kept in the optimizer state (``opt_state.hyperparams["lr"]``, or
    ``opt_state[0]``'s with a plateau), so that models differing only in ``lr`` share one compiled program.
    A schedule is applied as ``lr * schedule(step)`` of the schedule at learning rate 1 (the same arithmetic up
    to float reassociation)."""
    scheduled = config.lr_schedule != "constant"
    return _group_optimizer(
        config.optimizer,
        base_lr(config),
        config.lr_schedule,
        config.epochs if scheduled else 0,
        steps_per_epoch if scheduled else 0,
        config.reduce_lr_on_plateau,
    )


@functools.lru_cache(maxsize=64)
def _group_optimizer(
    optimizer: str, lr: float, lr_schedule: str, epochs: int, steps_per_epoch: int, plateau: bool
) -> optax.GradientTransformation:
    build = optimizers.OPTIMIZERS[optimizer][1]
    unit = None if lr_schedule == "constant" else SCHEDULES[lr_schedule].build(1.0, max(1, epochs * steps_per_epoch))

    def with_lr(lr):  # lr: a traced scalar inside the update
        return build(lr) if unit is None else build(lambda step: lr * unit(step))

    tx = optax.inject_hyperparams(with_lr)(lr)
    if plateau:
        tx = optax.chain(tx, optax.inject_hyperparams(optax.scale)(step_size=1.0))
    return tx


def plateau_scale(opt_state) -> float:
    """The plateau factor held in the optimizer state of :func:`make_optimizer` with ``reduce_lr_on_plateau``."""
    return float(np.asarray(opt_state[-1].hyperparams["step_size"]))


def with_plateau_scale(opt_state, scale: float):
    """``opt_state`` with its plateau factor set to ``scale`` (same dtype and shape: no recompilation)."""
    inner, injected = opt_state[:-1], opt_state[-1]
    old = injected.hyperparams["step_size"]
    hyper = {**injected.hyperparams, "step_size": jnp.asarray(scale, jnp.asarray(old).dtype)}
    return (*inner, injected._replace(hyperparams=hyper))


def learning_rate(config, steps_per_epoch: int, step: int, scale: float = 1.0) -> float:
    """The learning rate of 0-based optimizer ``step``, times the plateau ``scale``."""
    return float(schedule_for(config, steps_per_epoch)(step)) * scale
