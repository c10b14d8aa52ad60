"""Training: ``fit`` trains a :class:`~mlpjax.core.config.TrainConfig` epoch by epoch, evaluating after each.

``fit`` is the outline; each step is a small function. Before the first epoch: :func:`_plan` (what trains: the
config as trained, the model, the training and validation rows, the steps per epoch; refused before anything is
allocated if it cannot fit), :func:`_start` (the state, history and callbacks to start from, fresh or resumed)
and :func:`_compile` (the rows placed, the epoch and the evaluation compiled: a :class:`_Loop`). Each epoch:
:func:`_run_epoch` (train, check the loss, evaluate: an :class:`_Epoch`), :func:`_record_epoch`,
:func:`_update_callbacks` (early stopping, the plateau's learning-rate scale) and :func:`_epoch_lines`. After
the last: :func:`_restore_best` and :func:`_test`.

The pieces it strings together: the state (:mod:`mlpjax.core.state`), the rows on the devices (:mod:`mlpjax.training.rows`),
the compiled epoch and evaluation (:mod:`mlpjax.training.compiled`) and the run's record (:mod:`mlpjax.training.result`).
Randomness: everything comes from ``PRNGKey(config.seed)`` (see :mod:`mlpjax.core.state`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import jax

from mlpjax.core import callbacks
from mlpjax.core import schedules
from mlpjax.data import split
from mlpjax import data as data_lib
from mlpjax.core import model
from mlpjax.core import metrics as metrics_lib
from mlpjax.core.config import TrainConfig
from mlpjax.errors import FieldError, UserInputError
from mlpjax.training.result import FitResult, History, empty_history
from mlpjax.training.budget import check_training, effective_batch_size
from mlpjax.training.rows import Rows
from mlpjax.training.compiled import EpochRunner, Evaluator, layout_for, prepare_epoch, prepare_evaluate
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.training.steps import ProgressFn

EpochHook = Callable[[int, TrainState, History], None]


class TrainingDiverged(FieldError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float, where: Any = None, note: str = ""):
        self.epoch, self.loss = epoch, loss
        super().__init__("lr", f"training diverged in epoch {epoch}: the loss is {loss}; try a lower {{field}}"
                         + note, where=where)


@dataclasses.dataclass(frozen=True)
class Resumed:
    """Where a resumed run starts: the state after ``len(history["loss"])`` epochs and their history.

    ``best``: ``(epoch, params)`` of the epoch of lowest val_loss so far (1-based), for early stopping to restore
    (e.g. from the run's ``best/`` checkpoint); None, or another epoch than the history's best, and early stopping
    counts its patience from the resumed epoch on."""

    state: TrainState
    history: History
    best: tuple[int, model.Params] | None = None


@dataclasses.dataclass
class _Callbacks:
    """Early stopping and the plateau of one fit, with the best weights seen (host copies)."""

    early: callbacks.EarlyStopping | None
    plateau: callbacks.Plateau | None
    best_params: model.Params | None = None

    @classmethod
    def start(cls, config: TrainConfig, history: History, state: TrainState,
              best: tuple[int, model.Params] | None) -> "_Callbacks":
        """Rebuilt from the history of the epochs done (nothing done: fresh)."""
        losses, done = history["val_loss"], len(history["val_loss"])
        plateau = None if not config.reduce_lr_on_plateau else callbacks.replay(
            callbacks.plateau_update, callbacks.Plateau(config.plateau_factor, config.plateau_patience), losses)
        if config.early_stopping is None:
            return cls(None, plateau)
        early = callbacks.replay(callbacks.early_stopping_update, callbacks.EarlyStopping(config.early_stopping),
                                 losses)
        if early.best_epoch == done and done:
            return cls(early, plateau, jax.device_get(state.params))
        if best is not None and best[0] == early.best_epoch:
            return cls(early, plateau, jax.device_get(best[1]))
        if not done:
            return cls(early, plateau)
        # the best weights are not at hand: count the patience from the resumed epoch, as if it were the best
        return cls(callbacks.EarlyStopping(config.early_stopping, losses[-1], done), plateau,
                   jax.device_get(state.params))

    def update(self, epoch: int, val_loss: float, params: model.Params) -> None:
        """After 1-based ``epoch``: ``params`` (this process's copy) become the best weights if they are."""
        if self.early is not None:
            self.early = callbacks.early_stopping_update(self.early, epoch, val_loss)
            if self.early.best_epoch == epoch:
                self.best_params = jax.device_get(params)
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

    def kept_epoch(self, done: int) -> int:
        """The 1-based epoch whose weights a fit of ``done`` epochs keeps: the best one when restored."""
        return self.early.best_epoch if self.restores else done

    def record(self) -> dict[str, Any]:
        """``early_stopping`` and ``reduce_lr_on_plateau`` as metrics.json records them (None: off)."""
        early = None if self.early is None else {
            "patience": self.early.patience, "stopped_epoch": self.early.stopped_epoch or None,
            "best_epoch": self.early.best_epoch, "restored_best_weights": self.stopped}
        plateau = None if self.plateau is None else {
            "factor": self.plateau.factor, "patience": self.plateau.patience,
            "reduced_after_epochs": list(self.plateau.reductions), "scale": self.plateau.scale}
        return {"early_stopping": early, "reduce_lr_on_plateau": plateau}


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one fit trains, worked out before anything is allocated: the config as trained (the batch capped),
    the model, the dataset with its training and validation sides, and the optimizer steps per epoch."""

    config: TrainConfig
    model_config: model.ModelConfig
    dataset: data_lib.Dataset
    train: data_lib.Dataset  # the rows trained on, in its train split
    val: data_lib.Dataset  # the rows of val_*, in its test split
    steps_per_epoch: int


def _plan(config: TrainConfig, dataset: data_lib.Dataset) -> _Plan:
    """The plan of ``config`` on ``dataset``; a config whose memory cannot fit the machine is refused."""
    train_ds, val_ds = split.split(dataset, config.validation_split)
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    check_training(config, model_config, dataset)  # before anything is allocated
    config = trained_config(config, dataset)
    return _Plan(config, model_config, dataset, train_ds, val_ds,
                 steps_per_epoch=math.ceil(len(train_ds.y_train) / config.batch_size))


def _start(plan: _Plan, resumed: Resumed | None) -> tuple[TrainState, History, _Callbacks]:
    """Where training starts: the state (fresh from the seed, or resumed) with the plan's optimizer and the
    plateau's learning-rate scale, the history so far and the callbacks replayed over it."""
    config, model_config = plan.config, plan.model_config
    state = resumed.state if resumed else create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    if state.model_config != model_config:
        raise UserInputError(f"the saved model {state.model_config} does not match the config ({model_config})")
    state = state.replace(tx=schedules.make_optimizer(config, plan.steps_per_epoch))
    history = _start_history(resumed.history if resumed else empty_history(), config, plan.steps_per_epoch,
                             plan.model_config.num_classes)
    calls = _Callbacks.start(config, history, state, resumed.best if resumed else None)
    if calls.plateau is not None and schedules.plateau_scale(state.opt_state) != calls.scale:
        state = state.replace(opt_state=schedules.with_plateau_scale(state.opt_state, calls.scale))
    return state, history, calls


def _start_history(saved: History, config: TrainConfig, steps_per_epoch: int, num_classes: int) -> History:
    """A copy of ``saved`` (empty for a fresh run) with every key this run records: ``lr`` (computed for a
    history saved before it was recorded) and ``val_<metric>`` (NaN for epochs that did not measure it)."""
    history = {k: list(v) for k, v in saved.items()}
    _fill_lr(history, config, steps_per_epoch)
    for key in _val_keys(config, num_classes):
        history.setdefault("val_" + key, [math.nan] * len(history["loss"]))
    return history


def _fill_lr(history: History, config: TrainConfig, steps_per_epoch: int) -> None:
    """Give a history saved before ``lr`` was recorded the learning rate of each epoch (no plateau then)."""
    if "lr" not in history:
        history["lr"] = [_learning_rate(config, steps_per_epoch, e) for e in range(1, len(history["loss"]) + 1)]


def _learning_rate(config: TrainConfig, steps_per_epoch: int, epoch: int, scale: float = 1.0) -> float:
    """The learning rate of the last step of 1-based ``epoch``, times the plateau ``scale``."""
    return schedules.learning_rate(config, steps_per_epoch, epoch * steps_per_epoch - 1, scale)


def _val_keys(config: TrainConfig, num_classes: int) -> tuple[str, ...]:
    """The evaluation metrics kept as ``val_<key>`` besides val_loss and val_accuracy (``f1_score``: one key per
    class, see :func:`mlpjax.core.metrics.result_keys`)."""
    return tuple(k for m in config.metrics if m != "accuracy" for k in metrics_lib.result_keys(m, num_classes))


class _ProgressBar:
    """One tqdm bar per epoch, fed from the device by the epoch's progress callback."""

    def __init__(self, steps: int):
        self.steps, self.bar = steps, None

    def start(self, epoch: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch}", unit="step", leave=True)

    def update(self, step, loss_sum, correct_sum, seen) -> None:
        self.bar.update(int(step) - self.bar.n)
        self.bar.set_postfix(loss=f"{float(loss_sum) / float(seen):.4f}",
                             acc=f"{float(correct_sum) / float(seen):.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclasses.dataclass(frozen=True)
class _Loop:
    """A plan made ready on the devices: its compiled epoch over the training rows, the compiled evaluation of
    the validation rows and the progress bar (None: quiet)."""

    plan: _Plan
    runner: EpochRunner
    evaluator: Evaluator
    bar: _ProgressBar | None

    @property
    def compile_seconds(self) -> float:
        return self.runner.compile_seconds + self.evaluator.compile_seconds

    @property
    def processes(self) -> int:
        return 1 if self.runner.layout is None else self.runner.layout.process_count


def _compile(plan: _Plan, state: TrainState, *, quiet: bool, mesh: jax.sharding.Mesh | None
             ) -> tuple[_Loop, TrainState]:
    """Place the rows on ``mesh`` (None: one device) and compile the plan's epoch and validation: the loop and
    ``state`` placed as it expects. No progress bar when ``quiet`` or with several processes."""
    layout = layout_for(mesh, plan.model_config)
    quiet = quiet or (layout is not None and layout.process_count > 1)
    bar = None if quiet else _ProgressBar(plan.steps_per_epoch)
    progress: ProgressFn | None = None if bar is None else bar.update
    runner, state = prepare_epoch(state, Rows.from_dataset(plan.train, "train", layout),
                                  batch_size=plan.config.batch_size, progress=progress)
    evaluator = _evaluation(plan, state.params, Rows.from_dataset(plan.val, "test", layout))
    return _Loop(plan, runner, evaluator, bar), state


def _evaluation(plan: _Plan, params: model.Params, rows: Rows) -> Evaluator:
    """The compiled evaluation of the plan's model and loss on ``rows``."""
    return prepare_evaluate(params, rows, model_config=plan.model_config, loss_name=plan.config.loss)


@dataclasses.dataclass(frozen=True)
class _Epoch:
    """One epoch's figures: its 1-based ``number``, the learning rate of its last step, its training and
    validation metrics, and the seconds its training took."""

    number: int
    lr: float
    train: dict[str, float]
    val: dict[str, float]
    seconds: float


def _run_epoch(loop: _Loop, state: TrainState, epoch: int, scale: float) -> tuple[TrainState, _Epoch]:
    """Train 1-based ``epoch`` at the plateau ``scale`` and evaluate it on the validation rows. Raises
    :class:`TrainingDiverged` if its training loss is not finite."""
    plan, bar = loop.plan, loop.bar
    if bar:
        bar.start(epoch)
    t0 = time.perf_counter()
    lr = _learning_rate(plan.config, plan.steps_per_epoch, epoch, scale)
    state, metrics = loop.runner(state, epoch - 1)
    train = {k: float(v) for k, v in loop.runner.local(metrics).items()}  # waits for the device
    seconds = time.perf_counter() - t0
    if bar:
        bar.close()
    if not math.isfinite(train["loss"]):
        raise TrainingDiverged(epoch, train["loss"])
    return state, _Epoch(epoch, lr, train, loop.evaluator(state.params), seconds)


def _record_epoch(history: History, config: TrainConfig, done: _Epoch, num_classes: int) -> None:
    """Append one epoch's figures to ``history``."""
    for key, value in (("loss", done.train["loss"]), ("accuracy", done.train["accuracy"]),
                       ("val_loss", done.val["loss"]), ("val_accuracy", done.val["accuracy"]),
                       ("lr", done.lr), *(("val_" + k, done.val[k]) for k in _val_keys(config, num_classes))):
        history[key].append(value)


def _update_callbacks(loop: _Loop, calls: _Callbacks, state: TrainState, done: _Epoch) -> tuple[TrainState, bool]:
    """``calls`` after epoch ``done``, and the state to train on: with the plateau's new scale if it cut the
    learning rate (True)."""
    scale = calls.scale
    calls.update(done.number, done.val["loss"], loop.runner.local(state).params if calls.early else None)
    if calls.scale == scale:
        return state, False
    return _with_scale(loop.runner, state, calls.scale), True


def _with_scale(runner: EpochRunner, state: TrainState, scale: float) -> TrainState:
    """The placed ``state`` with the plateau factor ``scale`` in its optimizer state."""
    local = runner.local(state)
    return runner.place(local.replace(opt_state=schedules.with_plateau_scale(local.opt_state, scale)))


def epoch_line(epoch: int, epochs: int, train_metrics: dict[str, float], test_metrics: dict[str, float],
               seconds: float) -> str:
    """The line printed after each epoch."""
    return (f"epoch {epoch}/{epochs}: loss {train_metrics['loss']:.4f} accuracy {train_metrics['accuracy']:.4f} "
            f"val_loss {test_metrics['loss']:.4f} val_accuracy {test_metrics['accuracy']:.4f} ({seconds:.2f} s)")


def _epoch_lines(config: TrainConfig, done: _Epoch, calls: _Callbacks, rescaled: bool) -> list[str]:
    """What ``log`` receives after epoch ``done``: its line (with the learning rate unless it is constant) and,
    if the plateau cut the learning rate, a line saying so."""
    line = epoch_line(done.number, config.epochs, done.train, done.val, done.seconds)
    lines = [line if config.lr_schedule == "constant" and calls.plateau is None else f"{line} lr {done.lr:.3g}"]
    if rescaled:
        lines.append(f"val_loss has not improved for {config.plateau_patience} epochs: learning rate x{calls.scale:g}")
    return lines


def _restore_best(loop: _Loop, calls: _Callbacks, state: TrainState, log: Callable[[str], None] | None
                  ) -> TrainState:
    """``state``, with the best epoch's weights if early stopping stopped and kept them (saying so to ``log``)."""
    if not calls.restores:
        return state
    state = loop.runner.place(loop.runner.local(state).replace(params=calls.best_params))
    if log:
        log(f"early stopping after epoch {calls.early.stopped_epoch}: val_loss has not improved for "
            f"{calls.early.patience} epochs; restored the weights of epoch {calls.early.best_epoch}")
    return state


def _test(loop: _Loop, state: TrainState, calls: _Callbacks, last: _Epoch | None) -> tuple[dict[str, float], float]:
    """The test figures of the weights kept, and the seconds spent compiling their evaluation. With a
    validation split, the test set evaluated once, now; else the ``last`` epoch's validation figures, unless
    the weights are another epoch's (restored) or no epoch ran."""
    plan = loop.plan
    if plan.config.validation == "split":
        tester = _evaluation(plan, state.params, Rows.from_dataset(plan.dataset, "test", loop.runner.layout))
        return tester(state.params), tester.compile_seconds
    if calls.restores or last is None:
        return loop.evaluator(state.params), 0.0
    return last.val, 0.0


def trained_config(config: TrainConfig, dataset: data_lib.Dataset) -> TrainConfig:
    """``config`` as it trains on ``dataset``: a batch larger than the rows trained on (those left by the
    validation split) is those rows, as in Keras; :class:`FitResult` records the batch used."""
    rows = len(split.split(dataset, config.validation_split)[0].y_train)
    return config.replace(batch_size=effective_batch_size(config.batch_size, rows))


def fit(config: TrainConfig, dataset: data_lib.Dataset | None = None, *, resume_from: Resumed | None = None,
        on_epoch_end: EpochHook | None = None, log: Callable[[str], None] | None = None, quiet: bool = True,
        mesh: jax.sharding.Mesh | None = None) -> FitResult:
    """Train ``config`` for ``config.epochs`` epochs in all, evaluating on the validation data after each.

    The validation data is the last ``config.validation_split`` of the training rows (never trained on; the test
    split is then evaluated once, at the end), or with no split the test split itself (the tutorial's
    ``validation_data=(x_test, y_test)``). The history holds, per epoch, ``loss``, ``accuracy`` (training),
    ``val_loss``, ``val_accuracy``, ``val_<metric>`` for ``config.metrics`` and ``lr``, the learning rate of the
    epoch's last step. With ``config.early_stopping``, training stops after that many epochs without a lower
    val_loss and the weights of the best epoch are restored (Keras' ``restore_best_weights=True``); with
    ``config.reduce_lr_on_plateau`` the learning rate is cut on plateaus of val_loss (:mod:`mlpjax.core.callbacks`).

    ``dataset`` None: loaded by name from ``config``. ``resume_from``: continue after its epochs.
    ``on_epoch_end(epoch, state, history)`` runs after each epoch (1-based ``epoch``), e.g. to save a
    checkpoint; ``log`` receives one line per epoch; ``quiet=False`` draws a progress bar. Raises
    :class:`TrainingDiverged` if the loss is not finite. A ``batch_size`` above the training set's size is
    capped at it (``FitResult.config`` holds the batch used); a config whose memory cannot fit the machine is
    refused before anything is allocated (:func:`mlpjax.training.budget.check_training`).

    ``mesh`` (from :func:`mlpjax.training.mesh.make_mesh`; None: one device): data-parallel over its ``data`` axis and
    tensor-parallel over its ``model`` axis, if any, on one process or several (after
    :func:`mlpjax.training.distributed.initialize`, each calling ``fit`` alike). The states handed to ``on_epoch_end``
    and returned are this process's single-device copies; with several processes there is no progress bar.
    """
    plan = _plan(config, dataset or data_lib.load_dataset(config.dataset, config.data_dir))
    state, history, calls = _start(plan, resume_from)
    loop, state = _compile(plan, state, quiet=quiet, mesh=mesh)
    epochs: list[_Epoch] = []
    for epoch in range(len(history["loss"]) + 1, plan.config.epochs + 1):  # 1-based
        if calls.stopped:
            break
        state, done = _run_epoch(loop, state, epoch, calls.scale)
        epochs.append(done)
        _record_epoch(history, plan.config, done, plan.model_config.num_classes)
        state, rescaled = _update_callbacks(loop, calls, state, done)
        if log:
            for line in _epoch_lines(plan.config, done, calls, rescaled):
                log(line)
        if on_epoch_end:
            on_epoch_end(epoch, loop.runner.local(state), history)
    state = _restore_best(loop, calls, state, log)
    test_metrics, test_compile_seconds = _test(loop, state, calls, epochs[-1] if epochs else None)
    return FitResult(state=loop.runner.local(state), config=plan.config, history=history, test_metrics=test_metrics,
                     epoch_seconds=[e.seconds for e in epochs],
                     compile_seconds=loop.compile_seconds + test_compile_seconds,
                     dataset=plan.dataset.describe(), devices=loop.runner.devices, processes=loop.processes,
                     kept_epoch=calls.kept_epoch(len(history["loss"])), callbacks=calls.record())
