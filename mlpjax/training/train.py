"""Training: ``fit`` trains a :class:`~mlpjax.core.config.TrainConfig` epoch by epoch, evaluating after each.

``fit`` is the outline; each step is a small function. Before the first epoch: :func:`make_plan` (what trains:
the config as trained, the model, the training and validation rows, the steps per epoch; refused before anything
is allocated if it cannot fit), :func:`_start` (the state and the :class:`~mlpjax.training.loop.Member` to start
from, fresh or resumed) and :func:`_compile` (the rows placed, the epoch and the evaluation compiled: a
:class:`_Loop`). The epochs, early stopping, the plateau, the restored weights and the test figures are the one
loop of :mod:`mlpjax.training.loop`, which a vmapped sweep runs too; ``fit``'s program is :class:`_OneModel`.

The pieces it strings together: the state (:mod:`mlpjax.core.state`), the rows on the devices
(:mod:`mlpjax.training.rows`), the compiled epoch and evaluation (:mod:`mlpjax.training.compiled`) and the run's
record (:mod:`mlpjax.training.result`). Randomness: everything comes from ``PRNGKey(config.seed)`` (see
:mod:`mlpjax.core.state`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from mlpjax import data as data_lib
from mlpjax.core import model, schedules
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.data import scaling, split
from mlpjax.errors import FieldError, UserInputError, check_int
from mlpjax.training import loop as loop_lib
from mlpjax.training.budget import check_training, effective_batch_size
from mlpjax.training.compiled import EpochRunner, Evaluator, layout_for, prepare_epoch, prepare_evaluate
from mlpjax.training.result import FitResult, History
from mlpjax.training.rows import Rows
from mlpjax.training.steps import ProgressFn

EpochHook = Callable[[int, TrainState, History], None]
SaveHook = Callable[[int, "Resumed"], None]  # (1-based epoch, where a run resumed after it starts)


class Saving(NamedTuple):
    """What :func:`fit` (and a vmapped sweep's group) saves: ``hook(epoch, where_to_resume)`` after the first
    epoch, every ``every``-th, the last one trained and the one before a divergence
    (:func:`mlpjax.training.loop.saves`)."""

    hook: Callable[[int, Any], None]
    every: int = 1


class TrainingDiverged(FieldError):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float, where: Any = None, note: str = ""):
        self.epoch, self.loss = epoch, loss
        super().__init__(
            "lr", f"training diverged in epoch {epoch}: the loss is {loss}; try a lower {{field}}" + note, where=where
        )


@dataclasses.dataclass(frozen=True)
class Resumed:
    """Where a resumed run starts: the state after ``len(history["loss"])`` epochs and their history.

    ``scaler``: the feature scaling the run trained with (``config.normalize``), as saved; None where
    ``normalize`` is ``"none"``, or to fit it again on the rows trained on, which gives the same scaling on the
    same data.

    ``best``: ``(epoch, params)`` of the epoch of lowest val_loss so far (1-based), for early stopping to restore
    (e.g. from the run's ``best/`` checkpoint); None, or another epoch than the history's best, and early stopping
    counts its patience from the resumed epoch on."""

    state: TrainState
    history: History
    best: tuple[int, model.Params] | None = None
    scaler: scaling.Scaler | None = None  # the scaling the run trained with (None: fitted again, as fit fits it)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one model trains, worked out before anything is allocated: the config as trained (the batch capped),
    the model, the dataset with its training and validation sides, and the optimizer steps per epoch; with
    ``config.normalize``, the scaler fitted on the rows trained on and the three datasets scaled by it."""

    config: TrainConfig
    model_config: model.ModelConfig
    dataset: data_lib.Dataset
    train: data_lib.Dataset  # the rows trained on, in its train split
    val: data_lib.Dataset  # the rows of val_*, in its test split
    steps_per_epoch: int
    scaler: scaling.Scaler | None = None


def check_dataset(config: TrainConfig, dataset: data_lib.Dataset) -> None:
    """Refuse ``dataset`` unless it is what ``config.dataset`` names: a registered dataset (:data:`DATASETS
    <mlpjax.data.DATASETS>`) by the same name and of its shape. Data under a name of its own (the user's, built
    with :func:`~mlpjax.data.make_dataset`) trains under any config; ``config.dataset`` then gives its defaults."""
    if not isinstance(dataset, data_lib.Dataset):
        raise FieldError("dataset", f"the data given must be a mlpjax.data.Dataset, got {type(dataset).__name__}")
    if dataset.name not in data_lib.DATASETS:
        return
    if dataset.name != config.dataset:
        raise FieldError(
            "dataset",
            f"{{field}} is {config.dataset!r} but the data given is {dataset.name!r}; "
            f"pass the data of {config.dataset!r} or a config of dataset={dataset.name!r}",
        )
    shape = data_lib.get_spec(dataset.name).shape
    if shape is not None and shape != (dataset.input_dim, dataset.num_classes):
        raise FieldError(
            "dataset",
            f"{{field}} {dataset.name!r} has {shape[0]} features and {shape[1]} classes; "
            f"the data given has {dataset.input_dim} features and {dataset.num_classes} classes",
        )


def make_plan(
    config: TrainConfig,
    dataset: data_lib.Dataset,
    *,
    check_memory: bool = True,
    scaler: scaling.Scaler | None = None,
) -> Plan:
    """The plan of ``config`` on ``dataset`` (checked by :func:`check_dataset`; the validation rows split off
    once); with ``check_memory``, a config whose training cannot fit the machine is refused
    (:func:`mlpjax.training.budget.check_training`). With ``config.normalize``, the features are scaled by
    ``scaler`` (None: :func:`fit_scaler`'s, fitted on the rows trained on); ``"none"`` leaves ``dataset`` as it is."""
    if not isinstance(config, TrainConfig):
        raise FieldError("config", f"must be a TrainConfig, got {type(config).__name__}")
    check_dataset(config, dataset)
    train_ds, val_ds = split.split(dataset, config.validation_split)
    model_config = config.model_config(dataset.input_dim, dataset.num_classes)
    if check_memory:
        check_training(config, model_config, dataset)  # before anything is allocated
    if scaler is not None and scaler.kind != config.normalize:
        raise FieldError("normalize", f"{{field}} is {config.normalize!r} but the scaler given is {scaler.kind!r}")
    if config.normalize != "none":
        scaler = scaler or scaling.fit_on_training_rows(train_ds, config.normalize)
        dataset = scaling.scaled_dataset(dataset, scaler)
        train_ds, val_ds = split.split(dataset, config.validation_split)
    config = trained_config(config, dataset)
    return Plan(
        config,
        model_config,
        dataset,
        train_ds,
        val_ds,
        steps_per_epoch=math.ceil(len(train_ds.y_train) / config.batch_size),
        scaler=scaler if config.normalize != "none" else None,
    )


def fit_scaler(config: TrainConfig, dataset: data_lib.Dataset) -> scaling.Scaler | None:
    """The scaling ``fit`` trains ``config`` on ``dataset`` with: ``config.normalize`` fitted on the rows trained
    on, those left after the validation split (never the validation or test rows); None for ``"none"``."""
    train_ds, _ = split.split(dataset, config.validation_split)
    return scaling.fit_on_training_rows(train_ds, config.normalize)


def _start(plan: Plan, resumed: Resumed | None) -> tuple[TrainState, loop_lib.Member]:
    """Where training starts: the state (fresh from the seed, or resumed) with the plan's optimizer and the
    plateau's learning-rate scale, and the member: the history so far and the callbacks replayed over it."""
    config, model_config = plan.config, plan.model_config
    state = resumed.state if resumed else create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    if state.model_config != model_config:
        raise UserInputError(f"the saved model {state.model_config} does not match the config ({model_config})")
    state = state.replace(tx=schedules.make_optimizer(config, plan.steps_per_epoch))
    member = loop_lib.Member.start(
        config,
        plan.steps_per_epoch,
        model_config.num_classes,
        resumed.history if resumed else None,
        lambda: state.params,
        resumed.best if resumed else None,
    )
    scale = member.calls.scale
    if member.calls.plateau is not None and schedules.plateau_scale(state.opt_state) != scale:
        state = state.replace(opt_state=schedules.with_plateau_scale(state.opt_state, scale))
    return state, member


class _ProgressBar:
    """One tqdm bar per epoch, fed from the device by the epoch's progress callback."""

    def __init__(self, steps: int):
        self.steps = steps
        self.bar: Any = None  # a tqdm bar from start()

    def start(self, epoch: int) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.steps, desc=f"epoch {epoch}", unit="step", leave=True)

    def update(self, step, loss_sum, correct_sum, seen) -> None:
        self.bar.update(int(step) - self.bar.n)
        self.bar.set_postfix(loss=f"{float(loss_sum) / float(seen):.4f}", acc=f"{float(correct_sum) / float(seen):.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclasses.dataclass(frozen=True)
class _Loop:
    """A plan made ready on the devices: its compiled epoch over the training rows, the compiled evaluation of
    the validation rows and the progress bar (None: quiet)."""

    plan: Plan
    runner: EpochRunner
    evaluator: Evaluator
    bar: _ProgressBar | None

    @property
    def compile_seconds(self) -> float:
        return self.runner.compile_seconds + self.evaluator.compile_seconds

    @property
    def processes(self) -> int:
        return 1 if self.runner.layout is None else self.runner.layout.process_count


def _compile(plan: Plan, state: TrainState, *, quiet: bool, mesh: jax.sharding.Mesh | None) -> tuple[_Loop, TrainState]:
    """Place the rows on ``mesh`` (None: one device) and compile the plan's epoch and validation: the loop and
    ``state`` placed as it expects. No progress bar when ``quiet`` or with several processes."""
    layout = layout_for(mesh, plan.model_config)
    quiet = quiet or (layout is not None and layout.process_count > 1)
    bar = None if quiet else _ProgressBar(plan.steps_per_epoch)
    progress: ProgressFn | None = None if bar is None else bar.update
    runner, state = prepare_epoch(
        state, Rows.from_dataset(plan.train, "train", layout), batch_size=plan.config.batch_size, progress=progress
    )
    evaluator = _evaluation(plan, state.params, Rows.from_dataset(plan.val, "test", layout))
    return _Loop(plan, runner, evaluator, bar), state


def _evaluation(plan: Plan, params: model.Params, rows: Rows) -> Evaluator:
    """The compiled evaluation of the plan's model and loss on ``rows``."""
    return prepare_evaluate(params, rows, model_config=plan.model_config, loss_name=plan.config.loss)


class _OneModel:
    """``fit``'s :class:`~mlpjax.training.loop.Program`: one model (``K = 1``), its state placed as the compiled
    loop expects (on one device or a mesh), its progress bar drawn per epoch."""

    def __init__(self, loop: _Loop, state: TrainState):
        self.loop, self.state = loop, state

    def train(self, epoch: int, active) -> list[loop_lib.Figures]:
        bar, runner = self.loop.bar, self.loop.runner
        if bar:
            bar.start(epoch)
        self.state, metrics = runner(self.state, epoch - 1)
        figures = {k: float(v) for k, v in runner.local(metrics).items()}  # waits for the device
        if bar:
            bar.close()
        return [figures]

    def evaluate(self) -> list[loop_lib.Figures]:
        return [self.loop.evaluator(self.state.params)]

    def evaluate_test(self) -> tuple[list[loop_lib.Figures], float]:
        plan = self.loop.plan
        tester = _evaluation(plan, self.state.params, Rows.from_dataset(plan.dataset, "test", self.loop.runner.layout))
        return [tester(self.state.params)], tester.compile_seconds

    def local(self) -> TrainState:
        """This process's single-device copy of the state."""
        return self.loop.runner.local(self.state)

    def params(self, k: int) -> model.Params:
        return self.local().params

    def set_scales(self, scales: dict[int, float]) -> None:
        local = self.local()
        self.state = self.loop.runner.place(
            local.replace(opt_state=schedules.with_plateau_scale(local.opt_state, scales[0]))
        )

    def set_params(self, k: int, params: model.Params) -> None:
        self.state = self.loop.runner.place(self.local().replace(params=params))


def epoch_line(
    epoch: int, epochs: int, train_metrics: dict[str, float], test_metrics: dict[str, float], seconds: float
) -> str:
    """The line printed after each epoch."""
    return (
        f"epoch {epoch}/{epochs}: loss {train_metrics['loss']:.4f} accuracy {train_metrics['accuracy']:.4f} "
        f"val_loss {test_metrics['loss']:.4f} val_accuracy {test_metrics['accuracy']:.4f} ({seconds:.2f} s)"
    )


def epoch_lines(member: loop_lib.Member, done: loop_lib.Epoch, rescaled: bool) -> list[str]:
    """What ``log`` receives after epoch ``done`` of ``member``: its line (with the learning rate unless it is
    constant) and, if the plateau cut the learning rate, a line saying so."""
    config, calls = member.config, member.calls
    line = epoch_line(done.number, config.epochs, done.train, done.val, done.seconds)  # type: ignore[arg-type]  # TrainConfig.__post_init__ fills epochs: never None
    lines = [line if config.lr_schedule == "constant" and calls.plateau is None else f"{line} lr {done.lr:.3g}"]
    if rescaled:
        lines.append(f"val_loss has not improved for {config.plateau_patience} epochs: learning rate x{calls.scale:g}")
    return lines


def trained_config(config: TrainConfig, dataset: data_lib.Dataset) -> TrainConfig:
    """``config`` as it trains on ``dataset``: a batch larger than the rows trained on (those left by the
    validation split) is those rows, as in Keras; :class:`FitResult` records the batch used."""
    trained_rows = len(split.split(dataset, config.validation_split)[0].y_train)
    return config.replace(batch_size=effective_batch_size(config.batch_size, trained_rows))


def fit(
    config: TrainConfig,
    dataset: data_lib.Dataset | None = None,
    *,
    resume_from: Resumed | None = None,
    on_epoch_end: EpochHook | None = None,
    save: Saving | None = None,
    log: Callable[[str], None] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Train ``config`` for ``config.epochs`` epochs in all, evaluating on the validation data after each.

    The validation data is the last ``config.validation_split`` of the training rows (never trained on; the test
    split is then evaluated once, at the end), or with no split the test split itself (the tutorial's
    ``validation_data=(x_test, y_test)``). The history holds, per epoch, ``loss``, ``accuracy`` (training),
    ``val_loss``, ``val_accuracy``, ``val_<metric>`` for ``config.metrics`` and ``lr``, the learning rate of the
    epoch's last step. With ``config.early_stopping``, training stops after that many epochs without a lower
    val_loss and the weights of the best epoch are restored (Keras' ``restore_best_weights=True``); with
    ``config.reduce_lr_on_plateau`` the learning rate is cut on plateaus of val_loss (:mod:`mlpjax.core.callbacks`).

    ``config.normalize`` other than ``"none"``: every feature is scaled by a :class:`~mlpjax.data.scaling.Scaler`
    fitted on the rows trained on (after the validation split; the validation and test rows are scaled by it,
    never fitted on), or by ``resume_from.scaler``; ``FitResult.scaler`` holds it, and ``FitResult.classifier``
    applies it to raw features. ``"none"`` trains on the features as they are, through the same program.

    ``dataset`` None: loaded by name from ``config``. ``resume_from``: continue after its epochs.
    ``on_epoch_end(epoch, state, history)`` runs after each epoch (1-based ``epoch``), e.g. to write logs;
    ``save`` (:class:`Saving`): ``save.hook(epoch, resumed)`` after the epochs to save (the first, every
    ``save.every``-th, the last trained, and
    the one before a divergence: :func:`mlpjax.training.loop.saves`), before ``on_epoch_end``, with the
    :class:`Resumed` that continues from that epoch (host copies of the state and the history, and the best
    weights that early stopping keeps), e.g. to write a checkpoint; ``log`` receives one line per epoch;
    a progress bar is drawn where ``log`` is given and stderr is a terminal. Raises :class:`TrainingDiverged` if
    the loss is not finite. A
    ``batch_size`` above the training set's size is capped at it (``FitResult.config`` holds the batch used); a
    config whose memory cannot fit the machine is refused before anything is allocated
    (:func:`mlpjax.training.budget.check_training`).

    ``mesh`` (from :func:`mlpjax.training.mesh.make_mesh`; None: one device): data-parallel over its ``data`` axis and
    tensor-parallel over its ``model`` axis, if any, on one process or several (after
    :func:`mlpjax.training.distributed.initialize`, each calling ``fit`` alike). The states handed to ``on_epoch_end``
    and returned are this process's single-device copies; with several processes there is no progress bar.
    """
    save_every = 1 if save is None else check_int("save_every", save.every)
    plan = make_plan(config, dataset or config.load_dataset(), scaler=resume_from.scaler if resume_from else None)
    state, member = _start(plan, resume_from)
    # a progress bar where lines are logged to a terminal (as Keras' verbose fit): never into a file or a pipe
    loop, state = _compile(plan, state, quiet=log is None or not sys.stderr.isatty(), mesh=mesh)
    program = _OneModel(loop, state)
    seconds: list[float] = []

    def report(epoch: int, done: list, rescaled: list[bool]) -> None:
        seconds.append(done[0].seconds)
        if log:
            for line in epoch_lines(member, done[0], rescaled[0]):
                log(line)

    def saving(epoch: int) -> Callable[[], None]:  # taken now, written now or when the next epoch diverges
        resumed = Resumed(
            jax.device_get(program.local()),
            {k: list(v) for k, v in member.history.items()},
            member.calls.best(),
            plan.scaler,
        )
        return lambda: save.hook(epoch, resumed)  # type: ignore[union-attr]  # only made where save is given

    last = loop_lib.run_epochs(
        program,
        [member],
        plan.config.epochs,  # type: ignore[arg-type]  # TrainConfig.__post_init__ fills epochs: never None
        report=report,
        on_epoch_end=(
            None if on_epoch_end is None else lambda epoch: on_epoch_end(epoch, program.local(), member.history)
        ),
        save=None if save is None else saving,
        save_every=save_every,
    )
    if member.diverged is not None:
        raise TrainingDiverged(member.diverged, member.diverged_loss)
    loop_lib.restore_best(program, [member], None if log is None else lambda k, line: log(line))
    (test_metrics,), test_compile_seconds = loop_lib.test_figures(program, [member], last)
    return FitResult(
        state=program.local(),
        config=plan.config,
        history=member.history,
        test_metrics=test_metrics,
        epoch_seconds=seconds,
        compile_seconds=loop.compile_seconds + test_compile_seconds,
        dataset=plan.dataset.describe(),
        devices=loop.runner.devices,
        processes=loop.processes,
        kept_epoch=member.kept_epoch,
        callbacks=member.calls.record(),
        scaler=plan.scaler,
    )
