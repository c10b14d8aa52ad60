"""Keras' ``EarlyStopping`` and ``ReduceLROnPlateau`` on ``val_loss``, as pure functions over small frozen states.

Each ``*_update(state, epoch, val_loss)`` returns the next state after 1-based ``epoch``; nothing else is read, so
a resumed run rebuilds the state by replaying the history's ``val_loss`` (:func:`replay`). The rules are Keras
3's with its defaults (``mode="min"``): early stopping counts an epoch as an improvement when ``val_loss`` is
strictly below the best (``min_delta=0``) and stops once ``patience`` epochs in a row have not improved;
the plateau callback needs ``val_loss < best - 1e-4`` (``min_delta=1e-4``), multiplies the learning rate by
``factor`` after ``patience`` such epochs and starts counting again (``cooldown=0``, ``min_lr=0``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TypeVar

PLATEAU_MIN_DELTA = 1e-4  # Keras' ReduceLROnPlateau default


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """``patience`` epochs; the best ``val_loss`` so far and its 1-based epoch (0: none yet); ``wait``: epochs
    since; ``stopped_epoch``: the epoch after which training stopped (0: still going)."""

    patience: int
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    stopped_epoch: int = 0

    @property
    def stopped(self) -> bool:
        return self.stopped_epoch > 0


def early_stopping_update(state: EarlyStopping, epoch: int, val_loss: float) -> EarlyStopping:
    """The state after 1-based ``epoch`` of ``val_loss`` (a stopped state stays as it is)."""
    if state.stopped:
        return state
    if val_loss < state.best:
        return dataclasses.replace(state, best=val_loss, best_epoch=epoch, wait=0)
    wait = state.wait + 1
    stopped = epoch if wait >= state.patience and epoch > 1 else 0  # Keras never stops after the first epoch
    return dataclasses.replace(state, wait=wait, stopped_epoch=stopped)


@dataclasses.dataclass(frozen=True)
class Plateau:
    """Reduce the learning rate by ``factor`` after ``patience`` epochs without improvement; ``scale`` is the
    product of the reductions so far (1.0: none), ``reductions`` the 1-based epochs after which they happened."""

    factor: float
    patience: int
    best: float = math.inf
    wait: int = 0
    scale: float = 1.0
    reductions: tuple[int, ...] = ()


def plateau_update(state: Plateau, epoch: int, val_loss: float) -> Plateau:
    """The state after 1-based ``epoch`` of ``val_loss``: its ``scale`` applies from the next epoch on."""
    if val_loss < state.best - PLATEAU_MIN_DELTA:
        return dataclasses.replace(state, best=val_loss, wait=0)
    wait = state.wait + 1
    if wait < state.patience:
        return dataclasses.replace(state, wait=wait)
    return dataclasses.replace(state, wait=0, scale=state.scale * state.factor, reductions=(*state.reductions, epoch))


S = TypeVar("S")


def replay(update: Callable[[S, int, float], S], state: S, val_losses: Sequence[float]) -> S:
    """``state`` after the epochs of ``val_losses`` (epoch 1 first), as a resumed run rebuilds it."""
    for epoch, val_loss in enumerate(val_losses, start=1):
        state = update(state, epoch, float(val_loss))
    return state
