"""The pure steps of :mod:`mlpjax.training.steps`, compiled ahead of time for rows placed on the devices.

``prepare_epoch`` gives an :class:`EpochRunner` (``state, metrics = runner(state, epoch)``), ``prepare_evaluate``
an :class:`Evaluator` (``metrics = evaluator(params)``); ``evaluate`` does both halves of the latter at once.
With a mesh, make the layout with :func:`layout_for`, place the rows with it, and everything else follows them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.core import metrics, model
from mlpjax.core.state import TrainState
from mlpjax.errors import UserInputError
from mlpjax.training import mesh as mesh_lib
from mlpjax.training.rows import Rows
from mlpjax.training.steps import ProgressFn, evaluate_sums, summarize, train_epoch


def layout_for(
    mesh: jax.sharding.Mesh | None, model_config: model.ModelConfig, shard_rows: bool | None = None
) -> mesh_lib.MeshLayout | None:
    """How a model of ``model_config`` lays out on ``mesh`` (None: one device, no layout)."""
    if mesh is None:
        return None
    return mesh_lib.MeshLayout(mesh, model_config.tensor_splits(), shard_rows)


def _check_rows(rows: Rows) -> None:
    if rows.count < 1:
        raise UserInputError("no examples to train or evaluate on (0 rows)")


_COMPILED: dict[Any, Any] = {}  # a few recent compilations, by what they were compiled for
_COMPILED_MAX = 16


def _signature(leaf: Any) -> tuple:
    dtype = leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)
    return np.shape(leaf), np.dtype(dtype), getattr(leaf, "sharding", None)


def _compiled(fn, statics: tuple, *args) -> tuple[Any, float]:
    """``fn`` (a jitted function) compiled ahead of time for ``args``, and the seconds it took: 0 when the same
    function with the same ``statics`` was compiled for arguments of the same structure (static fields
    included: model, optimizer, layout), shapes, dtypes and shardings before, in this process."""
    leaves, structure = jax.tree_util.tree_flatten(args)
    key = (statics, structure, tuple(_signature(leaf) for leaf in leaves))
    if key in _COMPILED:
        return _COMPILED[key], 0.0
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    seconds = time.perf_counter() - start
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = compiled
    return compiled, seconds


@dataclasses.dataclass(frozen=True)
class EpochRunner:
    """A compiled training epoch with its rows on the devices: ``state, metrics = runner(state, epoch)``.

    ``state`` must be placed as :meth:`place` places it (as is on one device) and is donated; the new state
    and ``metrics`` (``loss``, ``accuracy``) come back placed alike: :meth:`local` gives this process's
    single-device copy of either.
    """

    compiled: Any
    rows: Rows
    batch_size: int  # examples per global batch (before padding to a multiple of the device count)
    compile_seconds: float

    @property
    def layout(self) -> mesh_lib.MeshLayout | None:
        return self.rows.layout

    @property
    def devices(self) -> int:
        """Devices of the mesh, all axes and processes together."""
        return 1 if self.layout is None else self.layout.mesh.size

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch: ``ceil(rows.count / batch_size)``, whatever the device count."""
        return math.ceil(self.rows.count / self.batch_size)

    def place(self, tree: Any) -> Any:
        """Put ``tree`` (a state, params) where the compiled epoch expects it."""
        return tree if self.layout is None else self.layout.put_state(tree)

    def local(self, tree: Any) -> Any:
        """This process's single-device copy of a placed ``tree`` (identity on one device)."""
        return tree if self.layout is None else self.layout.local(tree)

    def __call__(self, state: TrainState, epoch: int) -> tuple[TrainState, dict[str, jax.Array]]:
        """Train 0-based ``epoch`` (its shuffle) from the placed ``state``."""
        return self.compiled(state, self.rows, self.place(np.int32(epoch)))


def prepare_epoch(
    state: TrainState, rows: Rows, *, batch_size: int, progress: ProgressFn | None = None
) -> tuple[EpochRunner, TrainState]:
    """Place ``state`` as ``rows`` are placed and compile one epoch of them: ``(runner, placed state)``.

    With several processes there is no progress callback. Use it to time an epoch on ``N`` devices:
    ``Rows.from_dataset(ds, "train", layout_for(make_mesh(N), state.model_config))``.
    """
    _check_rows(rows)
    if rows.layout is not None:
        mesh_lib.check_padding(batch_size, rows.layout.size)
        state = rows.layout.put_state(state)
        progress = progress if rows.layout.process_count == 1 else None
    fn = jax.jit(functools.partial(train_epoch, batch_size=batch_size, progress=progress), donate_argnums=0)
    epoch = np.int32(0) if rows.layout is None else rows.layout.put_state(np.int32(0))
    compiled, seconds = _compiled(fn, ("train_epoch", batch_size, progress), state, rows, epoch)
    return EpochRunner(compiled, rows, batch_size, seconds), state


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """A compiled evaluation of ``rows``: ``evaluator(params)`` gives :func:`mlpjax.training.steps.summarize`'s
    metrics (params placed as the rows' layout places them, or plain on one device)."""

    compiled: Any
    rows: Rows
    compile_seconds: float

    def __call__(self, params: model.Params) -> dict[str, float]:
        return summarize(self.sums(params))

    def sums(self, params: model.Params) -> dict[str, jax.Array]:
        """The evaluation sums of :func:`mlpjax.training.steps.eval_step` (the ``(C, C)`` ``confusion`` among them),
        this process's copy."""
        sums = self.compiled(params, self.rows)
        return sums if self.rows.layout is None else self.rows.layout.local(sums)


def prepare_evaluate(
    params: model.Params,
    rows: Rows,
    *,
    model_config: model.ModelConfig,
    loss_name: str = "categorical_crossentropy",
    batch_size: int = 1000,
) -> Evaluator:
    """Compile the evaluation of params like ``params`` on ``rows``, ``batch_size`` rows at a time (every metric
    registered now included: :func:`mlpjax.core.metrics.example_metrics`)."""
    _check_rows(rows)
    names = metrics.example_metrics()
    fn = jax.jit(
        functools.partial(
            evaluate_sums, model_config=model_config, loss_name=loss_name, batch_size=batch_size, example_metrics=names
        )
    )
    compiled, seconds = _compiled(fn, ("evaluate_sums", model_config, loss_name, batch_size, names), params, rows)
    return Evaluator(compiled, rows, seconds)


def evaluate(
    params: model.Params,
    rows: Rows,
    *,
    model_config: model.ModelConfig,
    loss_name: str = "categorical_crossentropy",
    batch_size: int = 1000,
) -> dict[str, float]:
    """Loss and every metric of :mod:`mlpjax.core.metrics` of ``params`` on ``rows`` (inference mode)."""
    return prepare_evaluate(params, rows, model_config=model_config, loss_name=loss_name, batch_size=batch_size)(params)


def evaluate_arrays(
    params: model.Params, x, y, *, model_config: model.ModelConfig, loss_name: str = "categorical_crossentropy"
) -> dict[str, float]:
    """:func:`evaluate` on float features ``x`` ``(N, D)`` and labels ``y`` ``(N,)`` on one device."""
    return evaluate(
        params, Rows.place(jnp.asarray(x, jnp.float32), jnp.asarray(y)), model_config=model_config, loss_name=loss_name
    )
