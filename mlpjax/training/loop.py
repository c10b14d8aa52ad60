"""The one epoch loop of mlpjax: one model (:func:`mlpjax.training.train.fit`) or a group of models trained as
one vmapped program (:func:`mlpjax.sweep.train.train_group_vmap`) go through the same steps.

A :class:`Program` trains and evaluates ``K`` models together (``K = 1`` for ``fit``); for each model the loop
keeps a :class:`Member`: its config as trained, its Keras-style history, its callbacks (early stopping, the
plateau, the best weights) and its fate. Each epoch (:func:`run_epochs`) the program trains the models still
active; a model whose training loss is not finite is marked diverged (that epoch is not recorded); the others are
evaluated on the validation rows, their epoch is recorded and their callbacks updated, and a plateau's new
learning-rate scale goes back to the program. A stopped or diverged model is frozen by the program while the
others go on. After the last epoch a model whose early stopping stopped gets its best weights back
(:func:`restore_best`) and each model's test figures follow one rule (:func:`test_figures`). So every
:class:`~mlpjax.core.config.TrainConfig` field means the same whatever trains it.

Checkpoints follow one rule too (:func:`saves`): the first epoch, every ``save_every``-th and the last one trained
(the planned last, or the one after which no model is still training: early stopping stopped them all), and,
when the next epoch diverges for every model still training, the epoch before it. What an epoch's save needs
is taken when the epoch ends (host copies): the program goes on and donates its state.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax

from mlpjax.core import callbacks, metrics, model, schedules
from mlpjax.core.config import TrainConfig
from mlpjax.training.result import History, empty_history

Figures = dict[str, float]


class Program(Protocol):
    """``K`` models compiled together; model ``k`` is the ``k``-th of the loop's members."""

    def train(self, epoch: int, active: Sequence[bool]) -> list[Figures]:
        """Train 1-based ``epoch`` for the models marked ``active`` (the others stay exactly as they are): each
        model's training ``loss`` and ``accuracy``."""

    def evaluate(self) -> list[Figures]:
        """Each model's figures on the validation rows, with its weights now."""

    def evaluate_test(self) -> tuple[list[Figures], float]:
        """Each model's figures on the test rows, and the seconds spent compiling that evaluation."""

    def params(self, k: int) -> model.Params:
        """Model ``k``'s weights now, as host arrays."""

    def set_scales(self, scales: dict[int, float]) -> None:
        """Set the plateau factor of each model ``k`` of ``scales`` (no recompilation)."""

    def set_params(self, k: int, params: model.Params) -> None:
        """Give model ``k`` the weights ``params``."""


@dataclasses.dataclass
class Callbacks:
    """Early stopping and the plateau of one model, with the best weights seen (host copies)."""

    early: callbacks.EarlyStopping | None
    plateau: callbacks.Plateau | None
    best_params: model.Params | None = None

    @classmethod
    def start(
        cls,
        config: TrainConfig,
        history: History,
        params: Callable[[], model.Params],
        best: tuple[int, model.Params] | None,
    ) -> Callbacks:
        """Rebuilt from the history of the epochs done (nothing done: fresh); ``params()`` gives the weights
        after them, ``best`` the ``(epoch, weights)`` of the best epoch where they were kept."""
        losses, done = history["val_loss"], len(history["val_loss"])
        plateau = (
            None
            if not config.reduce_lr_on_plateau
            else callbacks.replay(
                callbacks.plateau_update, callbacks.Plateau(config.plateau_factor, config.plateau_patience), losses
            )
        )
        if config.early_stopping is None:
            return cls(None, plateau)
        early = callbacks.replay(
            callbacks.early_stopping_update, callbacks.EarlyStopping(config.early_stopping), losses
        )
        if early.best_epoch == done and done:
            return cls(early, plateau, jax.device_get(params()))
        if best is not None and best[0] == early.best_epoch:
            return cls(early, plateau, jax.device_get(best[1]))
        if not done:
            return cls(early, plateau)
        # the best weights are not at hand: count the patience from the resumed epoch, as if it were the best
        return cls(callbacks.EarlyStopping(config.early_stopping, losses[-1], done), plateau, jax.device_get(params()))

    def update(self, epoch: int, val_loss: float, params: Callable[[], model.Params]) -> None:
        """After 1-based ``epoch``: the weights ``params()`` become the best weights if they are."""
        if self.early is not None:
            self.early = callbacks.early_stopping_update(self.early, epoch, val_loss)
            if self.early.best_epoch == epoch:
                self.best_params = jax.device_get(params())
        if self.plateau is not None:
            self.plateau = callbacks.plateau_update(self.plateau, epoch, val_loss)

    @property
    def scale(self) -> float:
        return 1.0 if self.plateau is None else self.plateau.scale

    @property
    def stopped(self) -> bool:
        return self.early is not None and self.early.stopped

    @property
    def restores(self) -> bool:
        """Early stopping stopped and has the best weights to restore."""
        return self.stopped and self.best_params is not None

    def best(self) -> tuple[int, model.Params] | None:
        """``(epoch, weights)`` of the best epoch that early stopping keeps (None: it keeps none), as a resumed
        run takes them back (:meth:`start`'s ``best``)."""
        if self.early is None or self.best_params is None:
            return None
        return self.early.best_epoch, self.best_params

    def kept_epoch(self, done: int) -> int:
        """The 1-based epoch whose weights a model of ``done`` epochs keeps: the best one when restored."""
        return self.early.best_epoch if self.early is not None and self.restores else done

    def record(self) -> dict[str, Any]:
        """``early_stopping`` and ``reduce_lr_on_plateau`` as metrics.json records them (None: off)."""
        early = (
            None
            if self.early is None
            else {
                "patience": self.early.patience,
                "stopped_epoch": self.early.stopped_epoch or None,
                "best_epoch": self.early.best_epoch,
                "restored_best_weights": self.stopped,
            }
        )
        plateau = (
            None
            if self.plateau is None
            else {
                "factor": self.plateau.factor,
                "patience": self.plateau.patience,
                "reduced_after_epochs": list(self.plateau.reductions),
                "scale": self.plateau.scale,
            }
        )
        return {"early_stopping": early, "reduce_lr_on_plateau": plateau}


@dataclasses.dataclass(frozen=True)
class Epoch:
    """One model's epoch: its 1-based ``number``, the learning rate of its last step, its training and
    validation figures, and the seconds its training took (all models of the program together)."""

    number: int
    lr: float
    train: Figures
    val: Figures
    seconds: float


@dataclasses.dataclass
class Member:
    """One model of a loop: its config as trained, its optimizer steps per epoch, its history, its callbacks,
    and ``diverged``: the 1-based epoch whose training loss was ``diverged_loss``, not finite (None: never)."""

    config: TrainConfig
    steps_per_epoch: int
    num_classes: int
    history: History
    calls: Callbacks
    diverged: int | None = None
    diverged_loss: float = math.nan

    @classmethod
    def start(
        cls,
        config: TrainConfig,
        steps_per_epoch: int,
        num_classes: int,
        saved: History | None,
        params: Callable[[], model.Params],
        best: tuple[int, model.Params] | None = None,
    ) -> Member:
        """A member of ``num_classes`` classes continuing the ``saved`` history (None: fresh) from the weights
        ``params()``."""
        history = start_history(saved or empty_history(), config, steps_per_epoch, num_classes)
        return cls(config, steps_per_epoch, num_classes, history, Callbacks.start(config, history, params, best))

    @property
    def done(self) -> int:
        """The epochs recorded."""
        return len(self.history["loss"])

    @property
    def active(self) -> bool:
        """Still training: neither stopped early nor diverged."""
        return self.diverged is None and not self.calls.stopped

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of the last step of 1-based ``epoch``, at the plateau's scale now."""
        return learning_rate(self.config, self.steps_per_epoch, epoch, self.calls.scale)

    def record(self, done: Epoch) -> None:
        """Append one epoch's figures to the history."""
        for key, value in (
            ("loss", done.train["loss"]),
            ("accuracy", done.train["accuracy"]),
            ("val_loss", done.val["loss"]),
            ("val_accuracy", done.val["accuracy"]),
            ("lr", done.lr),
            *(("val_" + k, done.val[k]) for k in val_keys(self.config, self.num_classes)),
        ):
            self.history[key].append(value)

    @property
    def kept_epoch(self) -> int:
        return self.calls.kept_epoch(self.done)

    def restore_line(self) -> str:
        early = self.calls.early
        assert early is not None  # said only when early stopping restored the weights
        return (
            f"early stopping after epoch {early.stopped_epoch}: val_loss has not improved for "
            f"{early.patience} epochs; restored the weights of epoch {early.best_epoch}"
        )


def learning_rate(config: TrainConfig, steps_per_epoch: int, epoch: int, scale: float = 1.0) -> float:
    """The learning rate of the last step of 1-based ``epoch``, times the plateau ``scale``."""
    return schedules.learning_rate(config, steps_per_epoch, epoch * steps_per_epoch - 1, scale)


def val_keys(config: TrainConfig, num_classes: int) -> tuple[str, ...]:
    """The evaluation metrics kept as ``val_<key>`` besides val_loss and val_accuracy (``f1_score``: one key per
    class, see :func:`mlpjax.core.metrics.result_keys`)."""
    return tuple(k for m in config.metrics if m != "accuracy" for k in metrics.result_keys(m, num_classes))


def start_history(saved: History, config: TrainConfig, steps_per_epoch: int, num_classes: int) -> History:
    """A copy of ``saved`` (empty for a fresh run) with every key a run records: ``lr`` (computed for a history
    saved before it was recorded) and ``val_<metric>`` (NaN for epochs that did not measure it)."""
    history = {k: list(v) for k, v in saved.items()}
    if "lr" not in history:
        history["lr"] = [learning_rate(config, steps_per_epoch, e) for e in range(1, len(history["loss"]) + 1)]
    for key in val_keys(config, num_classes):
        history.setdefault("val_" + key, [math.nan] * len(history["loss"]))
    return history


Report = Callable[[int, list["Epoch | None"], list[bool]], None]  # (epoch, each model's Epoch or None, rescaled)
# after an epoch: take what saving it needs (host copies) and give back the function that writes it
Save = Callable[[int], Callable[[], None]]


def saves(epoch: int, save_every: int, last: bool) -> bool:
    """Whether 1-based ``epoch`` is saved: the first (a run folder holds a run from its first epoch on), every
    ``save_every``-th, and the ``last`` one trained. (The epoch before a divergence is saved too:
    :func:`run_epochs`.)"""
    return epoch == 1 or epoch % save_every == 0 or last


def run_epochs(
    program: Program,
    members: Sequence[Member],
    epochs: int,
    *,
    report: Report | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    save: Save | None = None,
    save_every: int = 1,
) -> list[Epoch | None]:
    """Train ``members`` through 1-based epoch ``epochs``, from the epoch after the longest history (module
    docstring). ``report(epoch, done, rescaled)``, then the save of the epoch where it is one that
    :func:`saves` (``save(epoch)()``), then ``on_epoch_end(epoch)`` after every epoch that recorded at least one
    model. An epoch not saved is held (``save(epoch)``, not yet called) until the next epoch ends: when that one
    diverges for every model still training, the held one is written, so that the last epoch recorded is on
    disk however the loop ends. Returns each model's last Epoch of this call (None: none recorded)."""
    last: list[Epoch | None] = [None] * len(members)
    held: Callable[[], None] | None = None  # the write of the last epoch recorded, where it was not saved
    for epoch in range(max(m.done for m in members) + 1, epochs + 1):
        active = [m.active for m in members]
        if not any(active):
            break
        lrs = [m.learning_rate(epoch) for m in members]
        t0 = time.perf_counter()
        trained = program.train(epoch, active)
        seconds = time.perf_counter() - t0
        for m, a, figures in zip(members, active, trained, strict=True):
            if a and not math.isfinite(figures["loss"]):
                m.diverged, m.diverged_loss = epoch, figures["loss"]
        going = [a and m.diverged is None for a, m in zip(active, members, strict=True)]
        if not any(going):
            break
        val = program.evaluate()
        done: list[Epoch | None] = [None] * len(members)
        rescaled, scales = [False] * len(members), {}
        for k, m in enumerate(members):
            if not going[k]:
                continue
            done[k] = last[k] = recorded = Epoch(epoch, lrs[k], trained[k], val[k], seconds)
            m.record(recorded)
            scale = m.calls.scale
            m.calls.update(epoch, val[k]["loss"], functools.partial(program.params, k))
            if m.calls.scale != scale:
                rescaled[k], scales[k] = True, m.calls.scale
        if scales:
            program.set_scales(scales)
        if report:
            report(epoch, done, rescaled)
        if save is not None:
            write = save(epoch)
            held = None
            if saves(epoch, save_every, epoch == epochs or not any(m.active for m in members)):
                write()
            else:
                held = write
        if on_epoch_end:
            on_epoch_end(epoch)
    if held is not None:  # the next epoch diverged for every model still training: keep the one before it
        held()
    return last


def restore_best(program: Program, members: Sequence[Member], log: Callable[[int, str], None] | None = None) -> None:
    """Give each member whose early stopping stopped its best weights back, saying so to ``log(k, line)``."""
    for k, m in enumerate(members):
        if m.diverged is None and m.calls.restores:
            assert m.calls.best_params is not None  # restores: there are best weights
            program.set_params(k, m.calls.best_params)
            if log:
                log(k, m.restore_line())


def test_figures(
    program: Program, members: Sequence[Member], last: Sequence[Epoch | None]
) -> tuple[list[Figures], float]:
    """Each member's test figures with the weights it keeps, and the seconds spent compiling for them. With a
    validation split the test rows are evaluated now; else the validation rows are the test rows, and the
    ``last`` epoch's figures serve unless the weights are another epoch's (restored) or no epoch ran. A diverged
    member's figures are NaN."""
    if members[0].config.validation == "split":
        figures, seconds = program.evaluate_test()
    else:
        now: list[Figures] = []  # filled when some member needs it
        if any(m.calls.restores or e is None for m, e in zip(members, last, strict=True)):
            now = program.evaluate()
        figures = [
            e.val if e is not None and not m.calls.restores else now[k]
            for k, (m, e) in enumerate(zip(members, last, strict=True))
        ]
        seconds = 0.0
    nan = {"loss": math.nan, "accuracy": math.nan}
    return [nan if m.diverged is not None else f for m, f in zip(members, figures, strict=True)], seconds
