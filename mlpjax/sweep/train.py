"""Sweeps: the product of lists of training settings, trained group by group, each group as one program.

:func:`grid` makes the models (each a :class:`~mlpjax.core.config.TrainConfig`); :func:`groups` puts together those
that differ only in ``seed``, ``lr`` and ``dropout`` (:data:`VARYING`): the same shapes and optimizer structure.
:func:`run_sweep` trains every group with a strategy:

- ``"vmap"``: the group's states stacked (:mod:`mlpjax.sweep.stack`) and trained as one vmapped, jitted epoch; on a
  model mesh (:func:`mlpjax.sweep.stack.model_mesh`) the model axis is split over the devices;
- ``"sequential"``: :func:`mlpjax.training.train.fit` of each model in turn;
- ``"auto"``: :func:`auto_strategy` of the platform (``docs/sweep.md`` has the measurement behind it).

Either way model ``k``'s history is the one ``mlpjax train`` gives its config alone (the same PRNG streams
from ``PRNGKey(seed)``), up to float reassociation under ``vmap`` (relative 1e-5 in the tests).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mlpjax import data as data_lib
from mlpjax.sweep import stack
from mlpjax.training import train
from mlpjax.core.config import TrainConfig
from mlpjax.errors import FieldError, check_name
from mlpjax.training.result import History, empty_history
from mlpjax.training.budget import check_training
from mlpjax.training.rows import Rows
from mlpjax.core.state import TrainState
from mlpjax.training.steps import summarize

LISTED = ("seed", "lr", "dropout", "hidden", "activation", "optimizer", "loss", "batch_size", "epochs")
VARYING = ("seed", "lr", "dropout")  # what may differ inside a group: everything else shapes the program
STRATEGIES = ("auto", "vmap", "sequential")
# Where vmap measured faster per model than one model at a time (docs/sweep.md): accelerators, not this CPU.
VMAP_PLATFORMS = ("gpu", "cuda", "rocm", "tpu")
Log = Callable[[str], None]


def grid(base: Mapping[str, Any], lists: Mapping[str, Sequence[Any]]) -> list[TrainConfig]:
    """Every combination of ``lists`` (flat TrainConfig field -> values, fields of :data:`LISTED`) over the flat
    settings ``base``: the product in :data:`LISTED` order, the last field varying fastest.

    Each config is checked as ``TrainConfig`` checks it (a bad value raises its :class:`FieldError`); an
    empty list or a value listed twice is a FieldError of its field.
    """
    for name, values in lists.items():
        if name not in LISTED:
            raise FieldError(name, f"{{field}} cannot be given as a list; lists: {', '.join(LISTED)}")
        if len(values) == 0:
            raise FieldError(name, "needs at least one value")
        shown = [tuple(v) if isinstance(v, list) else v for v in values]
        twice = [v for i, v in enumerate(shown) if v in shown[:i]]
        if twice:
            raise FieldError(name, f"lists {twice[0]!r} twice; give each value once")
    names = [n for n in LISTED if n in lists]
    return [TrainConfig.from_dict({**base, **dict(zip(names, combo, strict=True))})
            for combo in itertools.product(*(lists[n] for n in names))]


def group_key(config: TrainConfig) -> tuple:
    """What a group shares: every flat field but :data:`VARYING` (``hidden`` as a tuple)."""
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in sorted(config.to_dict().items())
                 if k not in VARYING)


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
    """One model of a sweep: its config, its Keras-style history and its test metrics after the last epoch
    (``diverged``: the 1-based epoch whose loss was not finite, training of it stopped there)."""

    config: TrainConfig
    history: History
    test_metrics: dict[str, float]
    diverged: int | None = None

    def record(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "history": self.history, "test_loss": self.test_metrics.get("loss"),
                "test_accuracy": self.test_metrics.get("accuracy"), "test_metrics": self.test_metrics,
                "diverged": self.diverged}


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
    """Where a group starts: its stacked state after ``len(histories[0]["loss"])`` epochs and the histories."""

    state: TrainState
    histories: list[History]


GroupHook = Callable[[int, TrainState, list[History]], None]  # (1-based epoch, stacked state, histories)


def _epoch_line(where: str, epoch: int, epochs: int, histories: Sequence[History], seconds: float) -> str:
    val = [h["val_accuracy"][-1] for h in histories]
    loss = [h["loss"][-1] for h in histories]
    return (f"{where} epoch {epoch}/{epochs}: loss {np.mean(loss):.4f} (mean of {len(histories)}) "
            f"val_accuracy {np.mean(val):.4f} (min {min(val):.4f}, max {max(val):.4f}) ({seconds:.2f} s)")


def train_group_vmap(configs: Sequence[TrainConfig], dataset: data_lib.Dataset, *, mesh: Mesh | None = None,
                     start: GroupStart | None = None, on_epoch_end: GroupHook | None = None,
                     log: Log | None = None, where: str = "group") -> tuple[list[ModelRun], GroupRun]:
    """Train the group ``configs`` (one :func:`group_key`) as one vmapped program for ``configs[0].epochs``.

    Model ``k`` consumes ``PRNGKey(configs[k].seed)`` as :func:`mlpjax.training.train.fit` would. ``mesh``: a 1-D
    :func:`mlpjax.sweep.stack.model_mesh`; the group is padded with copies of its last model to a multiple of its
    devices (their results dropped). ``start``: continue from it; ``on_epoch_end(epoch, state, histories)``
    after each epoch (the stacked state of the ``K`` real models, on the host's default device).
    A model whose loss stops being finite keeps training (its numbers are NaN) and is marked ``diverged``.
    """
    k = len(configs)
    first = configs[0]
    model_config = first.model_config(dataset.input_dim, dataset.num_classes)
    padded = list(configs) + [configs[-1]] * (stack.padded_size(k, mesh) - k)
    state = start.state if start else stack.group_state(configs, model_config)
    if len(padded) > k:
        extra = jax.tree_util.tree_map(lambda a: np.repeat(np.asarray(a[-1:]), len(padded) - k, 0),
                                       stack.stack_arrays(state))
        state = state.replace(**jax.tree_util.tree_map(lambda a, b: np.concatenate([np.asarray(a), b]),
                                                       stack.stack_arrays(state), extra))
    state = stack.shard_models(state, mesh)
    train_rows = stack.replicate(Rows.from_dataset(dataset, "train"), mesh)
    test_rows = stack.replicate(Rows.from_dataset(dataset, "test"), mesh)
    out: dict[str, Any] = {} if mesh is None else {"out_shardings": NamedSharding(mesh, PartitionSpec(stack.MODELS))}
    t0 = time.perf_counter()
    epoch_fn = jax.jit(functools.partial(stack.group_epoch, batch_size=first.batch_size), donate_argnums=0,
                       **out).lower(state, train_rows, np.int32(0)).compile()
    eval_fn = jax.jit(functools.partial(stack.group_evaluate_sums, model_config=model_config,
                                        loss_name=first.loss), **out).lower(state.params, test_rows).compile()
    compile_seconds = time.perf_counter() - t0
    histories = [{key: list(v) for key, v in h.items()} for h in start.histories] if start else \
        [empty_history() for _ in configs]
    diverged: list[int | None] = [None] * k
    epoch_seconds, tests = [], None
    for epoch in range(len(histories[0]["loss"]), first.epochs):
        t0 = time.perf_counter()
        state, metrics = epoch_fn(state, train_rows, np.int32(epoch))
        metrics = jax.device_get(metrics)  # waits for the device
        epoch_seconds.append(time.perf_counter() - t0)
        sums = jax.device_get(eval_fn(state.params, test_rows))
        tests = [summarize(jax.tree_util.tree_map(lambda a, i=i: a[i], sums)) for i in range(k)]
        for i, h in enumerate(histories):
            for key, value in (("loss", metrics["loss"][i]), ("accuracy", metrics["accuracy"][i]),
                               ("val_loss", tests[i]["loss"]), ("val_accuracy", tests[i]["accuracy"])):
                h[key].append(float(value))
            if diverged[i] is None and not math.isfinite(h["loss"][-1]):
                diverged[i] = epoch + 1
        if log:
            log(_epoch_line(where, epoch + 1, first.epochs, histories, epoch_seconds[-1]))
        if on_epoch_end:
            on_epoch_end(epoch + 1, _real(state, k), histories)
    if tests is None:  # started at the last epoch: still report the test
        sums = jax.device_get(eval_fn(state.params, test_rows))
        tests = [summarize(jax.tree_util.tree_map(lambda a, i=i: a[i], sums)) for i in range(k)]
    runs = [ModelRun(c, h, t, d) for c, h, t, d in zip(configs, histories, tests, diverged, strict=True)]
    return runs, GroupRun([], "vmap", compile_seconds, epoch_seconds, 1 if mesh is None else mesh.size)


def _real(state: TrainState, k: int) -> TrainState:
    """The first ``k`` models of a (padded, sharded) stacked state, as host arrays."""
    return state.replace(**jax.tree_util.tree_map(lambda a: np.asarray(jax.device_get(a))[:k],
                                                  stack.stack_arrays(state)))


def train_sequential(config: TrainConfig, dataset: data_lib.Dataset, *, log: Log | None = None,
                     where: str = "model", fit: Callable[..., Any] | None = None,
                     on_epoch_end: Callable[[int, Any], None] | None = None) -> tuple[ModelRun, GroupRun]:
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
    return (ModelRun(config, result.history, result.test_metrics),
            GroupRun([], "sequential", result.compile_seconds, result.epoch_seconds))


@dataclasses.dataclass
class SweepResult:
    """A whole sweep: ``runs`` in the order of the configs, ``groups`` in the order they were trained."""

    runs: list[ModelRun]
    groups: list[GroupRun]
    strategy: str
    seconds: float

    def record(self) -> dict[str, Any]:
        """``results.json``: ``runs`` (config, history, test_loss, test_accuracy) and ``groups``."""
        return {"strategy": self.strategy, "seconds": self.seconds, "device": jax.devices()[0].platform,
                "runs": [r.record() for r in self.runs], "groups": [g.record() for g in self.groups]}


ModelHook = Callable[[int, int, Any], None]  # (model index in the sweep, 1-based epoch, its params)


def _group_hook(members: Sequence[int], saver: GroupHook | None, on_model_epoch: ModelHook | None
                ) -> GroupHook | None:
    if saver is None and on_model_epoch is None:
        return None

    def hook(epoch: int, state: TrainState, histories: list[History]) -> None:
        if saver:
            saver(epoch, state, histories)
        if on_model_epoch:
            for n, i in enumerate(members):
                on_model_epoch(i, epoch, stack.member(state, n).params)
    return hook


def check_sweep_memory(configs: Sequence[TrainConfig], dataset: data_lib.Dataset, strategy: str,
                 mesh: Mesh | None = None) -> None:
    """Refuse, before anything is allocated, a sweep whose largest program cannot fit in memory
    (:func:`mlpjax.training.budget.check_training`): with ``vmap`` each group's models together (on a mesh of
    accelerators, a device's share of them; CPU devices share the host's memory), else each group's model alone.
    ``strategy``: ``"vmap"`` or ``"sequential"`` (resolved)."""
    shared = mesh is None or mesh.devices.flat[0].platform == "cpu"
    for members in groups(configs):
        config = configs[members[0]]
        models = 1 if strategy != "vmap" else len(members) if shared or mesh is None else -(-len(members) // mesh.size)
        check_training(config, config.model_config(dataset.input_dim, dataset.num_classes), dataset, models)


def run_sweep(configs: Sequence[TrainConfig], dataset: data_lib.Dataset | None = None, *, strategy: str = "auto",
              mesh: Mesh | None = None, log: Log | None = None, hooks: Any = None,
              on_model_epoch: ModelHook | None = None) -> SweepResult:
    """Train every config of ``configs``, group by group (:func:`groups`) with ``strategy``.

    ``dataset`` None: loaded by name from the first config (all must share it). ``mesh``: a model mesh for
    ``vmap``. ``hooks`` (e.g. :class:`mlpjax.sweep.checkpoint.SweepCheckpoints`): ``hooks.group_start(g,
    configs)`` gives a :class:`GroupStart` or None, ``hooks.group_saver(g)`` an ``on_epoch_end`` or None,
    ``hooks.fit_for(i)`` a ``fit`` for sequential model ``i`` or None. ``log`` gets one line per epoch.
    ``on_model_epoch(i, epoch, params)``: after each epoch of model ``i`` (host params), e.g. to evaluate more.
    A sweep that cannot fit in memory is refused before anything trains (:func:`check_sweep_memory`).
    """
    t_start = time.perf_counter()
    strategy = resolve_strategy(strategy)
    if len({(c.dataset, c.data_dir) for c in configs}) > 1:
        raise FieldError("dataset", "must be the same for every model of a sweep")
    dataset = dataset or data_lib.load_dataset(configs[0].dataset, configs[0].data_dir)
    check_sweep_memory(configs, dataset, strategy, mesh)
    runs: list[ModelRun | None] = [None] * len(configs)
    done: list[GroupRun] = []
    found = groups(configs)
    for g, members in enumerate(found):
        where = f"group {g + 1}/{len(found)} ({len(members)} models)"
        if strategy == "vmap":
            group_runs, group = train_group_vmap(
                [configs[i] for i in members], dataset, mesh=mesh, log=log, where=where,
                start=hooks.group_start(g, [configs[i] for i in members]) if hooks else None,
                on_epoch_end=_group_hook(members, hooks.group_saver(g) if hooks else None, on_model_epoch))
            for i, r in zip(members, group_runs, strict=True):
                runs[i] = r
        else:
            group = GroupRun([], "sequential", 0.0, [])
            for n, i in enumerate(members):
                runs[i], one = train_sequential(configs[i], dataset, log=log, where=f"{where} model {n + 1}:",
                                                fit=hooks.fit_for(i) if hooks else None,
                                                on_epoch_end=functools.partial(on_model_epoch, i)
                                                if on_model_epoch else None)
                group.compile_seconds += one.compile_seconds
                group.epoch_seconds = [a + b for a, b in itertools.zip_longest(
                    group.epoch_seconds, one.epoch_seconds, fillvalue=0.0)]
        group.members = list(members)
        done.append(group)
    return SweepResult(runs, done, strategy, time.perf_counter() - t_start)  # type: ignore[arg-type]  # all run by now
