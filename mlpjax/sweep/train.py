"""Sweeps: the product of lists of training settings, trained group by group, each group as one program.

:func:`grid` makes the models (each a :class:`~mlpjax.core.config.TrainConfig`); :func:`groups` puts together those
that differ only in ``seed``, ``lr`` and ``dropout`` (:data:`VARYING`): the same shapes and optimizer structure.
:func:`run_sweep` trains every group with a strategy:

- ``"vmap"``: the group's states stacked (:mod:`mlpjax.sweep.stack`) and trained as one vmapped, jitted epoch; on a
  model mesh (:func:`mlpjax.sweep.stack.model_mesh`) the model axis is split over the devices;
- ``"sequential"``: :func:`mlpjax.training.train.fit` of each model in turn;
- ``"auto"``: :func:`auto_strategy` of the platform (``docs/sweep.md`` has the measurement behind it).

Both run the one epoch loop of :mod:`mlpjax.training.loop`, so every TrainConfig field means the same under
either strategy: schedules, the plateau, per-model early stopping (a stopped model is frozen with its best
weights while the others go on), the validation split, the metrics. Model ``k``'s history is the one
``mlpjax train`` gives its config alone (the same PRNG streams from ``PRNGKey(seed)``): bit for bit with
``sequential``; under ``vmap`` up to float reassociation, whose drift ``mlpjax experiment drift`` measures.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mlpjax import data as data_lib
from mlpjax import memory
from mlpjax.core import metrics as metrics_lib
from mlpjax.core import schedules
from mlpjax.core.config import DATA_FIELDS, TrainConfig
from mlpjax.core.state import TrainState
from mlpjax.errors import FieldError, check_name
from mlpjax.sweep import stack
from mlpjax.training import loop, train
from mlpjax.training.budget import check_training
from mlpjax.training.result import History, empty_history
from mlpjax.training.rows import Rows
from mlpjax.training.steps import summarize

# Every training field may be listed; the first ones in the order sweeps have always had (the last varies fastest)
FIRST_LISTED = ("seed", "lr", "dropout", "hidden", "activation", "optimizer", "loss", "batch_size", "epochs")
ONE_PER_SWEEP = DATA_FIELDS  # run_sweep trains every model on one dataset
LISTED = FIRST_LISTED + tuple(n for n in TrainConfig.flat_fields() if n not in FIRST_LISTED + ONE_PER_SWEEP)
VARYING = ("seed", "lr", "dropout")  # what may differ inside a group: everything else shapes the program
STRATEGIES = ("auto", "vmap", "sequential")
# Where vmap measured faster per model than one model at a time (docs/sweep.md): accelerators, not this CPU.
VMAP_PLATFORMS = ("gpu", "cuda", "rocm", "tpu")
Log = Callable[[str], None]
# The most models one sweep may list. Its plan (sweep.json, about 550 bytes a model) must stay well within what
# a sweep folder may hold (mlpjax.sweep.checkpoint.MAX_PLAN_BYTES, 256 MiB: about 480,000 models), its configs
# within a laptop's memory (BYTES_PER_MODEL: 0.6 GiB here), and it is already more than a day of training at a
# second a model. grid refuses more before it builds anything (docs/sweep.md).
MAX_MODELS = 100_000
# Host memory a model of the grid takes at its peak (measured: 470 B its TrainConfig, 100 B its group key and
# 4.6 KB while its plan is written: 5.2 KB), with a margin: grid refuses a product that would not fit.
BYTES_PER_MODEL = 6 * 1024


def grid(base: Mapping[str, Any], lists: Mapping[str, Sequence[Any]]) -> list[TrainConfig]:
    """Every combination of ``lists`` (flat TrainConfig field -> values, any field of :data:`LISTED`: every one
    but the dataset's) over the flat settings ``base``: the product in :data:`LISTED` order, the last field
    varying fastest.

    Each config is checked as ``TrainConfig`` checks it (a bad value raises its :class:`FieldError`); an
    empty list, a value listed twice or a listed dataset is a FieldError of its field; so is a product of more
    than :data:`MAX_MODELS` models or more than the memory available holds (:func:`check_product`), refused
    before any config is built.
    """
    for name, values in lists.items():
        if name in ONE_PER_SWEEP:
            raise FieldError(name, "{field} cannot be given as a list: a sweep trains every model on one dataset")
        if name not in LISTED:
            raise FieldError(name, f"{{field}} cannot be given as a list; lists: {', '.join(LISTED)}")
        if len(values) == 0:
            raise FieldError(name, "needs at least one value")
    names = [n for n in LISTED if n in lists]
    check_product({n: len(lists[n]) for n in names})
    for name in names:
        seen: set = set()
        for value in lists[name]:
            shown = tuple(value) if isinstance(value, list) else value
            try:
                hash(shown)
            except TypeError:  # TrainConfig refuses it below; only equal values are looked for here
                continue
            if shown in seen:
                raise FieldError(name, f"lists {shown!r} twice; give each value once")
            seen.add(shown)
    return [
        TrainConfig.from_dict({**base, **dict(zip(names, combo, strict=True))})
        for combo in itertools.product(*(lists[n] for n in names))
    ]


def check_product(lengths: Mapping[str, int]) -> int:
    """The number of models of lists of ``lengths`` (field -> how many values), the product computed without
    building it; more than :data:`MAX_MODELS`, or more than :data:`BYTES_PER_MODEL` each of the memory available
    (:func:`mlpjax.memory.available_memory`), is a FieldError naming the listed fields."""
    models = math.prod(lengths.values())
    longest = sorted((n for n in lengths if lengths[n] > 1), key=lambda n: -lengths[n])  # the lists, not 1 value
    listed = " x ".join(f"{{{n}}} ({lengths[n]} values)" for n in longest)
    needed, available = models * BYTES_PER_MODEL, memory.available_memory()
    if models > MAX_MODELS:
        why = f"more than the {MAX_MODELS:,} a sweep may train"
    elif needed > available:
        why = (
            f"whose plan would need {memory.format_bytes(needed)}, more than the "
            f"{memory.format_bytes(available)} of memory available"
        )
    else:
        return models
    first = longest[0]
    raise FieldError(
        first,
        f"{listed.replace('{' + first + '}', '{field}')} make {models:,} models, {why}; list fewer values",
        also=tuple(longest[1:]),
    )


def group_key(config: TrainConfig) -> tuple:
    """What a group shares: every flat field but :data:`VARYING` (``hidden`` as a tuple)."""
    return tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(config.to_dict().items()) if k not in VARYING
    )


def groups(configs: Sequence[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` by :func:`group_key`, groups in order of first appearance."""
    found: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        found.setdefault(group_key(config), []).append(i)
    return list(found.values())


def auto_strategy(platform: str | None = None) -> str:
    """``"vmap"`` on an accelerator (:data:`VMAP_PLATFORMS`), ``"sequential"`` on a CPU (``platform`` None: the
    default backend's)."""
    platform = platform or jax.devices()[0].platform
    return "vmap" if platform in VMAP_PLATFORMS else "sequential"


def resolve_strategy(strategy: str, platform: str | None = None) -> str:
    check_name("strategy", strategy, STRATEGIES)
    return auto_strategy(platform) if strategy == "auto" else strategy


@dataclasses.dataclass
class ModelRun:
    """One model of a sweep: its config, its Keras-style history and its test metrics with the weights it kept
    (``diverged``: the 1-based epoch whose loss was not finite, training of it stopped there; ``callbacks``:
    early stopping and the plateau as metrics.json records them; ``kept_epoch``: the epoch of its weights)."""

    config: TrainConfig
    history: History
    test_metrics: dict[str, float]
    diverged: int | None = None
    callbacks: dict[str, Any] = dataclasses.field(default_factory=dict)
    kept_epoch: int | None = None

    def record(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "history": self.history,
            "test_loss": self.test_metrics.get("loss"),
            "test_accuracy": self.test_metrics.get("accuracy"),
            "test_metrics": self.test_metrics,
            "diverged": self.diverged,
            "kept_epoch": self.kept_epoch,
            **self.callbacks,
        }


@dataclasses.dataclass
class GroupRun:
    """Models ``members`` (indices into the sweep) trained together with ``strategy``, and the seconds it took
    (``compile_seconds``: compiling epoch and evaluation; ``epoch_seconds``: each epoch of the group, all models)."""

    members: list[int]
    strategy: str
    compile_seconds: float
    epoch_seconds: list[float]
    devices: int = 1

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GroupStart:
    """Where a group starts: its stacked state after its epochs so far and each model's history (a model that
    stopped early or diverged has fewer epochs than the group); ``best``: for each model, ``(epoch, params)`` of
    its best epoch where kept (None: not kept), as :class:`mlpjax.training.train.Resumed` has it."""

    state: TrainState
    histories: list[History]
    best: list[tuple[int, Any] | None] | None = None


GroupHook = Callable[[int, GroupStart], None]  # (1-based epoch, where the group could start again after it)


class _Group:
    """A vmapped group's :class:`~mlpjax.training.loop.Program`: the stacked state of its ``k`` models (padded to
    the mesh's devices with copies of the last), its compiled epoch and validation."""

    def __init__(self, k: int, plan: train.Plan, state: TrainState, mesh: Mesh | None):
        self.k, self.plan, self.mesh = k, plan, mesh
        self.padded = stack.padded_size(k, mesh)
        if self.padded > k:
            arrays = stack.stack_arrays(state)
            extra = jax.tree_util.tree_map(lambda a: np.repeat(np.asarray(a[-1:]), self.padded - k, 0), arrays)
            state = state.replace(
                **jax.tree_util.tree_map(lambda a, b: np.concatenate([np.asarray(a), b]), arrays, extra)
            )
        self.state = stack.shard_models(state, mesh)
        self.train_rows = stack.replicate(Rows.from_dataset(plan.train, "train"), mesh)
        self.val_rows = stack.replicate(Rows.from_dataset(plan.val, "test"), mesh)
        self.out: dict[str, Any] = (
            {} if mesh is None else {"out_shardings": NamedSharding(mesh, PartitionSpec(stack.MODELS))}
        )
        t0 = time.perf_counter()
        self.epoch_fn = (
            jax.jit(
                functools.partial(stack.group_epoch, batch_size=plan.config.batch_size), donate_argnums=0, **self.out
            )
            .lower(self.state, self.train_rows, np.int32(0), np.ones(self.padded, bool))
            .compile()
        )
        self.eval_fn = self._evaluation(self.val_rows)
        self.compile_seconds = time.perf_counter() - t0

    def _evaluation(self, rows: Rows):
        return (
            jax.jit(
                functools.partial(
                    stack.group_evaluate_sums,
                    model_config=self.plan.model_config,
                    loss_name=self.plan.config.loss,
                    example_metrics=metrics_lib.example_metrics(),
                ),
                **self.out,
            )
            .lower(self.state.params, rows)
            .compile()
        )

    def _figures(self, sums) -> list[loop.Figures]:
        sums = jax.device_get(sums)
        return [summarize(jax.tree_util.tree_map(lambda a, i=i: a[i], sums)) for i in range(self.k)]

    def train(self, epoch: int, active) -> list[loop.Figures]:
        mask = np.asarray([*active, *[True] * (self.padded - self.k)])
        self.state, metrics = self.epoch_fn(self.state, self.train_rows, np.int32(epoch - 1), mask)
        metrics = jax.device_get(metrics)  # waits for the device
        return [{"loss": float(metrics["loss"][i]), "accuracy": float(metrics["accuracy"][i])} for i in range(self.k)]

    def evaluate(self) -> list[loop.Figures]:
        return self._figures(self.eval_fn(self.state.params, self.val_rows))

    def evaluate_test(self) -> tuple[list[loop.Figures], float]:
        t0 = time.perf_counter()
        rows = stack.replicate(Rows.from_dataset(self.plan.dataset, "test"), self.mesh)
        compiled = self._evaluation(rows)
        seconds = time.perf_counter() - t0
        return self._figures(compiled(self.state.params, rows)), seconds

    def params(self, k: int) -> Any:
        return jax.device_get(jax.tree_util.tree_map(lambda a: a[k], self.state.params))

    def set_scales(self, scales: dict[int, float]) -> None:
        plateau = self.state.opt_state[-1]
        step_size = plateau.hyperparams["step_size"]
        for k, scale in scales.items():
            step_size = step_size.at[k].set(scale)
        hyper = {**plateau.hyperparams, "step_size": step_size}
        opt_state = (*self.state.opt_state[:-1], plateau._replace(hyperparams=hyper))
        self.state = stack.shard_models(self.state.replace(opt_state=opt_state), self.mesh)

    def set_params(self, k: int, params: Any) -> None:
        self.state = stack.shard_models(
            self.state.replace(params=stack.set_member(self.state.params, k, params)), self.mesh
        )

    def real(self) -> TrainState:
        """The first ``k`` models of the stacked state, as host arrays."""
        return self.state.replace(
            **jax.tree_util.tree_map(lambda a: np.asarray(jax.device_get(a))[: self.k], stack.stack_arrays(self.state))
        )


def _prefixed(log: Log, where: str, line: str) -> None:
    """``log`` of ``line`` after ``where`` (which group or model it is about)."""
    log(f"{where} {line}")


def _epoch_line(epoch: int, epochs: int, done: Sequence[loop.Epoch | None], seconds: float) -> str:
    ran = [d for d in done if d is not None]
    val = [d.val["accuracy"] for d in ran]
    return (
        f"epoch {epoch}/{epochs}: loss {np.mean([d.train['loss'] for d in ran]):.4f} "
        f"(mean of {len(ran)}{'' if len(ran) == len(done) else f' still training of {len(done)}'}) "
        f"val_accuracy {np.mean(val):.4f} (min {min(val):.4f}, max {max(val):.4f}) ({seconds:.2f} s)"
    )


def train_group_vmap(
    configs: Sequence[TrainConfig],
    dataset: data_lib.Dataset,
    *,
    mesh: Mesh | None = None,
    start: GroupStart | None = None,
    on_epoch_end: GroupHook | None = None,
    save: train.Saving | None = None,
    log: Log | None = None,
) -> tuple[list[ModelRun], GroupRun]:
    """Train the group ``configs`` (one :func:`group_key`) as one vmapped program for ``configs[0].epochs``,
    through the epoch loop that ``fit`` runs (:mod:`mlpjax.training.loop`): every TrainConfig field honoured.

    Model ``k`` consumes ``PRNGKey(configs[k].seed)`` as :func:`mlpjax.training.train.fit` would. ``mesh``: a 1-D
    :func:`mlpjax.sweep.stack.model_mesh`; the group is padded with copies of its last model to a multiple of its
    devices (their results dropped). ``start``: continue from it; ``on_epoch_end(epoch, start)`` after each
    epoch, ``start`` a :class:`GroupStart` of the ``K`` real models (host arrays) that would continue from it;
    ``save.hook(epoch, start)`` (:class:`mlpjax.training.train.Saving`) alike, before it, after the epochs to save
    as ``fit`` saves them (the first, every ``save.every``-th, the last trained and the one before a divergence:
    :func:`mlpjax.training.loop.saves`). A
    model whose loss stops being finite is frozen and marked ``diverged``, its history ending with the epoch before,
    as ``fit`` would.
    """
    k = len(configs)
    plan = train.make_plan(configs[0], dataset, check_memory=False)  # memory: check_sweep_memory, for the group
    trained = [c.replace(batch_size=plan.config.batch_size) for c in configs]
    state = start.state if start else stack.group_state(trained, plan.model_config)
    state = state.replace(tx=schedules.make_group_optimizer(trained[0], plan.steps_per_epoch))

    def params_of(i: int) -> Any:  # model i's weights in the group's state now (read when asked)
        return jax.tree_util.tree_map(lambda a: a[i], state.params)

    members = [
        loop.Member.start(
            c,
            plan.steps_per_epoch,
            plan.model_config.num_classes,
            start.histories[i] if start else None,
            functools.partial(params_of, i),
            start.best[i] if start and start.best else None,
        )
        for i, c in enumerate(trained)
    ]
    if start:  # a model that stopped short of the group without stopping early had diverged
        done = max(m.done for m in members)
        for m in members:
            if m.done < done and not m.calls.stopped:
                m.diverged = m.done + 1
    program = _Group(k, plan, state, mesh)
    scales = {i: m.calls.scale for i, m in enumerate(members) if m.calls.plateau is not None}
    if scales:
        program.set_scales(scales)
    epoch_seconds: list[float] = []

    def report(epoch: int, done: list[loop.Epoch | None], rescaled: list[bool]) -> None:
        epoch_seconds.append(next(d.seconds for d in done if d is not None))
        if log:
            log(_epoch_line(epoch, plan.config.epochs, done, epoch_seconds[-1]))  # type: ignore[arg-type]  # TrainConfig.__post_init__ fills epochs: never None
            for i, m in enumerate(members):
                if rescaled[i]:
                    log(
                        f"model {i + 1}: val_loss has not improved for {m.config.plateau_patience} epochs: "
                        f"learning rate x{m.calls.scale:g}"
                    )
                if done[i] is not None and m.calls.stopped:
                    log(f"model {i + 1}: stopped early after epoch {epoch}")

    def snapshot() -> GroupStart:
        histories = [{k: list(v) for k, v in m.history.items()} for m in members]
        return GroupStart(program.real(), histories, [m.calls.best() for m in members])

    def saving(epoch: int) -> Callable[[], None]:  # taken now, written now or when the next epoch diverges
        start = snapshot()
        return lambda: save.hook(epoch, start)  # type: ignore[union-attr]  # only made where save is given

    last = loop.run_epochs(
        program,
        members,
        plan.config.epochs,  # type: ignore[arg-type]  # TrainConfig.__post_init__ fills epochs: never None
        report=report,
        on_epoch_end=(None if on_epoch_end is None else lambda epoch: on_epoch_end(epoch, snapshot())),
        save=None if save is None else saving,
        save_every=1 if save is None else save.every,
    )
    loop.restore_best(program, members, None if log is None else lambda i, line: log(f"model {i + 1}: {line}"))
    tests, test_seconds = loop.test_figures(program, members, last)
    runs = [
        ModelRun(c, m.history, t, m.diverged, m.calls.record(), m.kept_epoch)
        for c, m, t in zip(configs, members, tests, strict=True)
    ]
    return runs, GroupRun(
        [], "vmap", program.compile_seconds + test_seconds, epoch_seconds, 1 if mesh is None else mesh.size
    )


def train_sequential(
    config: TrainConfig,
    dataset: data_lib.Dataset,
    *,
    log: Log | None = None,
    where: str = "model",
    fit: Callable[..., Any] | None = None,
    on_epoch_end: Callable[[int, Any], None] | None = None,
) -> tuple[ModelRun, GroupRun]:
    """One model by :func:`mlpjax.training.train.fit` (or ``fit``, called alike: e.g. a checkpointed run's, which calls
    no ``on_epoch_end``), as a group of one; ``on_epoch_end(epoch, params)`` after each epoch. A diverged model
    is recorded, not raised: its history up to the epoch before."""
    seen: list[History] = [empty_history()]

    def keep(epoch, state, history):
        seen[0] = {k: list(v) for k, v in history.items()}
        if on_epoch_end:
            on_epoch_end(epoch, state.params)

    line = (lambda s: log(f"{where} {s}")) if log else None
    try:
        result = (fit or train.fit)(config, dataset, log=line, on_epoch_end=keep)
    except train.TrainingDiverged as e:
        nan = {"loss": math.nan, "accuracy": math.nan}
        return ModelRun(config, seen[0], nan, e.epoch), GroupRun([], "sequential", 0.0, [])
    return (
        ModelRun(config, result.history, result.test_metrics, None, result.callbacks, result.kept_epoch),
        GroupRun([], "sequential", result.compile_seconds, result.epoch_seconds),
    )


@dataclasses.dataclass
class SweepResult:
    """A whole sweep: ``runs`` in the order of the configs, ``groups`` in the order they were trained."""

    runs: list[ModelRun]
    groups: list[GroupRun]
    strategy: str
    seconds: float

    def record(self) -> dict[str, Any]:
        """``results.json``: ``runs`` (config, history, test_loss, test_accuracy) and ``groups``."""
        return {
            "strategy": self.strategy,
            "seconds": self.seconds,
            "device": jax.devices()[0].platform,
            "runs": [r.record() for r in self.runs],
            "groups": [g.record() for g in self.groups],
        }


ModelHook = Callable[[int, int, Any], None]  # (model index in the sweep, 1-based epoch, its params)


def _group_hook(members: Sequence[int], on_model_epoch: ModelHook | None) -> GroupHook | None:
    if on_model_epoch is None:
        return None

    def hook(epoch: int, start: GroupStart) -> None:
        for n, i in enumerate(members):
            on_model_epoch(i, epoch, stack.member(start.state, n).params)

    return hook


def check_sweep_memory(
    configs: Sequence[TrainConfig], dataset: data_lib.Dataset, strategy: str, mesh: Mesh | None = None
) -> None:
    """Refuse, before anything is allocated, a sweep whose largest program cannot fit in memory
    (:func:`mlpjax.training.budget.check_training`): with ``vmap`` each group's models together (on a mesh of
    accelerators, a device's share of them; CPU devices share the host's memory), else each group's model alone.
    ``strategy``: ``"vmap"`` or ``"sequential"`` (resolved)."""
    shared = mesh is None or mesh.devices.flat[0].platform == "cpu"
    for members in groups(configs):
        config = configs[members[0]]
        models = 1 if strategy != "vmap" else len(members) if mesh is None or shared else -(-len(members) // mesh.size)
        check_training(config, config.model_config(dataset.input_dim, dataset.num_classes), dataset, models)


def run_sweep(
    configs: Sequence[TrainConfig],
    dataset: data_lib.Dataset | None = None,
    *,
    strategy: str = "auto",
    mesh: Mesh | None = None,
    log: Log | None = None,
    hooks: Any = None,
    on_model_epoch: ModelHook | None = None,
) -> SweepResult:
    """Train every config of ``configs``, group by group (:func:`groups`) with ``strategy``.

    ``dataset`` None: loaded by name from the first config (all must share it). ``mesh``: a model mesh for
    ``vmap``. ``hooks`` (e.g. :class:`mlpjax.sweep.checkpoint.SweepCheckpoints`): ``hooks.group_start(g,
    configs)`` gives a :class:`GroupStart` or None, ``hooks.group_saver(g)`` a ``save`` or None (called every
    ``hooks.save_every`` epochs, the first and the last: :func:`train_group_vmap`), ``hooks.fit_for(i)`` a ``fit``
    for sequential model ``i`` or None. ``log`` gets one line per epoch.
    ``on_model_epoch(i, epoch, params)``: after each epoch of model ``i`` (host params), e.g. to evaluate more.
    A sweep that cannot fit in memory is refused before anything trains (:func:`check_sweep_memory`).
    """
    t_start = time.perf_counter()
    strategy = resolve_strategy(strategy)
    if len({tuple(getattr(c, n) for n in ONE_PER_SWEEP) for c in configs}) > 1:
        raise FieldError("dataset", "must be the same for every model of a sweep")
    dataset = dataset or configs[0].load_dataset()
    check_sweep_memory(configs, dataset, strategy, mesh)
    runs: list[ModelRun | None] = [None] * len(configs)
    done: list[GroupRun] = []
    found = groups(configs)
    for g, members in enumerate(found):
        where = f"group {g + 1}/{len(found)} ({len(members)} models)"
        if strategy == "vmap":
            group_runs, group = train_group_vmap(
                [configs[i] for i in members],
                dataset,
                mesh=mesh,
                log=None if log is None else functools.partial(_prefixed, log, where),
                start=hooks.group_start(g, [configs[i] for i in members]) if hooks else None,
                on_epoch_end=_group_hook(members, on_model_epoch),
                save=train.Saving(hooks.group_saver(g), hooks.save_every) if hooks else None,
            )
            for i, r in zip(members, group_runs, strict=True):
                runs[i] = r
        else:
            group = GroupRun([], "sequential", 0.0, [])
            for n, i in enumerate(members):
                runs[i], one = train_sequential(
                    configs[i],
                    dataset,
                    log=log,
                    where=f"{where} model {n + 1}:",
                    fit=hooks.fit_for(i) if hooks else None,
                    on_epoch_end=functools.partial(on_model_epoch, i) if on_model_epoch else None,
                )
                group.compile_seconds += one.compile_seconds
                group.epoch_seconds = [
                    a + b for a, b in itertools.zip_longest(group.epoch_seconds, one.epoch_seconds, fillvalue=0.0)
                ]
        group.members = list(members)
        done.append(group)
    # every group filled its members' runs above: none is None
    return SweepResult(runs, done, strategy, time.perf_counter() - t_start)  # type: ignore[arg-type]
