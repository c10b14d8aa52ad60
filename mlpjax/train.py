"""Training: ``fit`` trains a :class:`~mlpjax.config.TrainConfig` epoch by epoch, evaluating after each.

The pieces it strings together: the state (:mod:`mlpjax.state`), the rows on the devices (:mod:`mlpjax.rows`),
the compiled epoch and evaluation (:mod:`mlpjax.runner`) and the run's record (:mod:`mlpjax.records`).
Randomness: everything comes from ``PRNGKey(config.seed)`` (see :mod:`mlpjax.state`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import jax

from mlpjax import callbacks, schedules, validation
from mlpjax import data as data_lib
from mlpjax import model
from mlpjax.config import TrainConfig
from mlpjax.errors import FieldError, UserInputError
from mlpjax.records import FitResult, empty_history
from mlpjax.resources import check_training, effective_batch_size
from mlpjax.rows import Rows
from mlpjax.runner import EpochRunner, layout_for, prepare_epoch, prepare_evaluate
from mlpjax.state import TrainState, create_train_state
from mlpjax.steps import ProgressFn

EpochHook = Callable[[int, TrainState, dict[str, list[float]]], None]
History = dict[str, list[float]]


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

    def record(self) -> dict[str, Any]:
        """``early_stopping`` and ``reduce_lr_on_plateau`` as metrics.json records them (None: off)."""
        early = None if self.early is None else {
            "patience": self.early.patience, "stopped_epoch": self.early.stopped_epoch or None,
            "best_epoch": self.early.best_epoch, "restored_best_weights": self.stopped}
        plateau = None if self.plateau is None else {
            "factor": self.plateau.factor, "patience": self.plateau.patience,
            "reduced_after_epochs": list(self.plateau.reductions), "scale": self.plateau.scale}
        return {"early_stopping": early, "reduce_lr_on_plateau": plateau}


def _with_scale(runner: EpochRunner, state: TrainState, scale: float) -> TrainState:
    """The placed ``state`` with the plateau factor ``scale`` in its optimizer state."""
    local = runner.local(state)
    return runner.place(local.replace(opt_state=schedules.with_plateau_scale(local.opt_state, scale)))


def _start_history(saved: History, config: TrainConfig, steps_per_epoch: int) -> History:
    """A copy of ``saved`` (empty for a fresh run) with every key this run records: ``lr`` (computed for a
    history saved before it was recorded) and ``val_<metric>`` (NaN for epochs that did not measure it)."""
    history = {k: list(v) for k, v in saved.items()}
    _fill_lr(history, config, steps_per_epoch)
    for key in _val_keys(config):
        history.setdefault("val_" + key, [math.nan] * len(history["loss"]))
    return history


def _record_epoch(history: History, config: TrainConfig, train_metrics: dict[str, float],
                  val_metrics: dict[str, float], lr: float) -> None:
    """Append one epoch's figures to ``history``."""
    for key, value in (("loss", train_metrics["loss"]), ("accuracy", train_metrics["accuracy"]),
                       ("val_loss", val_metrics["loss"]), ("val_accuracy", val_metrics["accuracy"]),
                       ("lr", lr), *(("val_" + k, val_metrics[k]) for k in _val_keys(config))):
        history[key].append(value)


def _fill_lr(history: History, config: TrainConfig, steps_per_epoch: int) -> None:
    """Give a history saved before ``lr`` was recorded the learning rate of each epoch (no plateau then)."""
    if "lr" not in history:
        history["lr"] = [schedules.learning_rate(config, steps_per_epoch, (e + 1) * steps_per_epoch - 1)
                         for e in range(len(history["loss"]))]


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


def epoch_line(epoch: int, epochs: int, train_metrics: dict[str, float], test_metrics: dict[str, float],
               seconds: float) -> str:
    """The line printed after each epoch."""
    return (f"epoch {epoch}/{epochs}: loss {train_metrics['loss']:.4f} accuracy {train_metrics['accuracy']:.4f} "
            f"val_loss {test_metrics['loss']:.4f} val_accuracy {test_metrics['accuracy']:.4f} ({seconds:.2f} s)")


def _val_keys(config: TrainConfig) -> tuple[str, ...]:
    """The evaluation metrics kept as ``val_<name>`` besides val_loss and val_accuracy."""
    return tuple(m for m in config.metrics if m != "accuracy")


def trained_config(config: TrainConfig, dataset: data_lib.Dataset) -> TrainConfig:
    """``config`` as it trains on ``dataset``: a batch larger than the rows trained on (those left by the
    validation split) is those rows, as in Keras; :class:`FitResult` records the batch used."""
    rows = len(validation.split(dataset, config.validation_split)[0].y_train)
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
    ``config.reduce_lr_on_plateau`` the learning rate is cut on plateaus of val_loss (:mod:`mlpjax.callbacks`).

    ``dataset`` None: loaded by name from ``config``. ``resume_from``: continue after its epochs.
    ``on_epoch_end(epoch, state, history)`` runs after each epoch (1-based ``epoch``), e.g. to save a
    checkpoint; ``log`` receives one line per epoch; ``quiet=False`` draws a progress bar. Raises
    :class:`TrainingDiverged` if the loss is not finite. A ``batch_size`` above the training set's size is
    capped at it (``FitResult.config`` holds the batch used); a config whose memory cannot fit the machine is
    refused before anything is allocated (:func:`mlpjax.resources.check_training`).

    ``mesh`` (from :func:`mlpjax.mesh.make_mesh`; None: one device): data-parallel over its ``data`` axis and
    tensor-parallel over its ``model`` axis, if any, on one process or several (after
    :func:`mlpjax.distributed.initialize`, each calling ``fit`` alike). The states handed to ``on_epoch_end``
    and returned are this process's single-device copies; with several processes there is no progress bar.
    """
    dataset = dataset or data_lib.load_dataset(config.dataset, config.data_dir)
    train_ds, val_ds = validation.split(dataset, config.validation_split)
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    check_training(config, model_config, dataset)  # before anything is allocated
    config = trained_config(config, dataset)
    steps_per_epoch = math.ceil(len(train_ds.y_train) / config.batch_size)
    state = resume_from.state if resume_from else create_train_state(jax.random.PRNGKey(config.seed), config,
                                                                     model_config)
    if state.model_config != model_config:
        raise UserInputError(f"the saved model {state.model_config} does not match the config ({model_config})")
    state = state.replace(tx=schedules.make_optimizer(config, steps_per_epoch))
    history = _start_history(resume_from.history if resume_from else empty_history(), config, steps_per_epoch)
    calls = _Callbacks.start(config, history, state, resume_from.best if resume_from else None)
    if calls.plateau is not None and schedules.plateau_scale(state.opt_state) != calls.scale:
        state = state.replace(opt_state=schedules.with_plateau_scale(state.opt_state, calls.scale))

    layout = layout_for(mesh, model_config)
    quiet = quiet or (layout is not None and layout.process_count > 1)
    bar = None if quiet else _ProgressBar(steps_per_epoch)
    progress: ProgressFn | None = None if bar is None else bar.update
    runner, state = prepare_epoch(state, Rows.from_dataset(train_ds, "train", layout),
                                  batch_size=config.batch_size, progress=progress)
    evaluator = prepare_evaluate(state.params, Rows.from_dataset(val_ds, "test", layout),
                                 model_config=model_config, loss_name=config.loss)
    compile_seconds = runner.compile_seconds + evaluator.compile_seconds
    epoch_seconds, val_metrics = [], {}
    for epoch in range(len(history["loss"]), config.epochs):
        if calls.stopped:
            break
        if bar:
            bar.start(epoch + 1)
        t0 = time.perf_counter()
        lr = schedules.learning_rate(config, steps_per_epoch, (epoch + 1) * steps_per_epoch - 1, calls.scale)
        state, train_metrics = runner(state, epoch)
        train_metrics = {k: float(v) for k, v in runner.local(train_metrics).items()}  # waits for the device
        epoch_seconds.append(time.perf_counter() - t0)
        if bar:
            bar.close()
        if not math.isfinite(train_metrics["loss"]):
            raise TrainingDiverged(epoch + 1, train_metrics["loss"])
        val_metrics = evaluator(state.params)
        _record_epoch(history, config, train_metrics, val_metrics, lr)
        scale = calls.scale
        calls.update(epoch + 1, val_metrics["loss"], runner.local(state).params if calls.early else None)
        if calls.scale != scale:
            state = _with_scale(runner, state, calls.scale)
        if log:
            line = epoch_line(epoch + 1, config.epochs, train_metrics, val_metrics, epoch_seconds[-1])
            log(line if config.lr_schedule == "constant" and calls.plateau is None else f"{line} lr {lr:.3g}")
            if calls.scale != scale:
                log(f"val_loss has not improved for {config.plateau_patience} epochs: learning rate x{calls.scale:g}")
        if on_epoch_end:
            on_epoch_end(epoch + 1, runner.local(state), history)
    restored = calls.stopped and calls.best_params is not None
    if restored:
        state = runner.place(runner.local(state).replace(params=calls.best_params))
        if log:
            log(f"early stopping after epoch {calls.early.stopped_epoch}: val_loss has not improved for "
                f"{calls.early.patience} epochs; restored the weights of epoch {calls.early.best_epoch}")
    if config.validation == "split":  # the test set, once, at the end
        tester = prepare_evaluate(state.params, Rows.from_dataset(dataset, "test", layout),
                                  model_config=model_config, loss_name=config.loss)
        compile_seconds += tester.compile_seconds
        test_metrics = tester(state.params)
    else:  # resumed at the last epoch, or restored: evaluate the weights kept
        test_metrics = evaluator(state.params) if restored or not val_metrics else val_metrics
    return FitResult(state=runner.local(state), config=config, history=history, test_metrics=test_metrics,
                     epoch_seconds=epoch_seconds, compile_seconds=compile_seconds,
                     dataset=dataset.describe(), devices=runner.devices,
                     processes=1 if layout is None else layout.process_count,
                     kept_epoch=calls.early.best_epoch if restored else len(history["loss"]),
                     callbacks=calls.record())
