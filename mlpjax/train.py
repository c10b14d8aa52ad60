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

from mlpjax import data as data_lib
from mlpjax.config import TrainConfig
from mlpjax.errors import FieldError, UserInputError
from mlpjax.records import FitResult, empty_history
from mlpjax.resources import check_training, effective_batch_size
from mlpjax.rows import Rows
from mlpjax.runner import layout_for, prepare_epoch, prepare_evaluate
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
    """Where a resumed run starts: the state after ``len(history["loss"])`` epochs and their history."""

    state: TrainState
    history: History


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


def fit(config: TrainConfig, dataset: data_lib.Dataset | None = None, *, resume_from: Resumed | None = None,
        on_epoch_end: EpochHook | None = None, log: Callable[[str], None] | None = None, quiet: bool = True,
        mesh: jax.sharding.Mesh | None = None) -> FitResult:
    """Train ``config`` for ``config.epochs`` epochs in all, evaluating on the test split after each.

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
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    # a batch larger than the training set is the training set (as Keras); the record shows the batch used
    check_training(config, model_config, dataset)  # before anything is allocated
    config = config.replace(batch_size=effective_batch_size(config.batch_size, len(dataset.y_train)))
    state = resume_from.state if resume_from else create_train_state(jax.random.PRNGKey(config.seed), config,
                                                                     model_config)
    if state.model_config != model_config:
        raise UserInputError(f"the saved model {state.model_config} does not match the config ({model_config})")
    history = {k: list(v) for k, v in (resume_from.history if resume_from else empty_history()).items()}

    layout = layout_for(mesh, model_config)
    quiet = quiet or (layout is not None and layout.process_count > 1)
    bar = None if quiet else _ProgressBar(math.ceil(len(dataset.y_train) / config.batch_size))
    progress: ProgressFn | None = None if bar is None else bar.update
    runner, state = prepare_epoch(state, Rows.from_dataset(dataset, "train", layout),
                                  batch_size=config.batch_size, progress=progress)
    evaluator = prepare_evaluate(state.params, Rows.from_dataset(dataset, "test", layout),
                                 model_config=model_config, loss_name=config.loss)
    epoch_seconds, test_metrics = [], {}
    for epoch in range(len(history["loss"]), config.epochs):
        if bar:
            bar.start(epoch + 1)
        t0 = time.perf_counter()
        state, train_metrics = runner(state, epoch)
        train_metrics = {k: float(v) for k, v in runner.local(train_metrics).items()}  # waits for the device
        epoch_seconds.append(time.perf_counter() - t0)
        if bar:
            bar.close()
        if not math.isfinite(train_metrics["loss"]):
            raise TrainingDiverged(epoch + 1, train_metrics["loss"])
        test_metrics = evaluator(state.params)
        for key, value in (("loss", train_metrics["loss"]), ("accuracy", train_metrics["accuracy"]),
                           ("val_loss", test_metrics["loss"]), ("val_accuracy", test_metrics["accuracy"])):
            history[key].append(value)
        if log:
            log(epoch_line(epoch + 1, config.epochs, train_metrics, test_metrics, epoch_seconds[-1]))
        if on_epoch_end:
            on_epoch_end(epoch + 1, runner.local(state), history)
    test_metrics = test_metrics or evaluator(state.params)  # resumed at the last epoch: still report the test
    return FitResult(state=runner.local(state), config=config, history=history, test_metrics=test_metrics,
                     epoch_seconds=epoch_seconds, compile_seconds=runner.compile_seconds + evaluator.compile_seconds,
                     dataset=dataset.describe(), devices=runner.devices,
                     processes=1 if layout is None else layout.process_count)
