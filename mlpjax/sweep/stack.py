"""Many models as one pytree: training states stacked along a leading model axis, and their vmapped epoch.

A *group* is a list of :class:`~mlpjax.core.config.TrainConfig` that differ only in ``seed``, ``lr`` and ``dropout``
(:func:`mlpjax.sweep.train.group_key`): the same shapes and the same optimizer structure. Their states stack into one
:class:`~mlpjax.core.state.TrainState` whose every leaf has a leading axis of ``K`` models:

- ``params``, ``key`` and ``step``: model ``k``'s, exactly as :func:`mlpjax.core.state.create_train_state` makes them
  from ``PRNGKey(configs[k].seed)`` (so the dropout and shuffle streams are those of ``mlpjax train --seed``);
- ``opt_state``: the optimizer of :func:`mlpjax.core.schedules.make_group_optimizer`, which keeps the base
  learning rate in the state (``(K,)``: :func:`learning_rates`; schedules and the plateau's factor included), so
  one program serves every learning rate;
- ``dropout_rate``: ``(K,)`` float32, the traced rate :func:`mlpjax.training.steps.train_step` passes to the model.

:func:`group_epoch` is :func:`mlpjax.training.steps.train_epoch` under ``jax.vmap`` (the rows shared, not batched),
with a mask that freezes the models no longer training (stopped early or diverged);
:func:`group_evaluate_sums` is :func:`mlpjax.training.steps.evaluate_sums` likewise. On a 1-D mesh of axis ``models``
(:func:`model_mesh`) every leaf is sharded over its leading axis and the rows are replicated.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mlpjax.core import model, schedules
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, create_train_state
from mlpjax.errors import FieldError
from mlpjax.training.rows import Rows
from mlpjax.training.steps import evaluate_sums, train_epoch

MODELS = "models"  # the mesh axis of the model dimension


def member_state(config: TrainConfig, model_config: model.ModelConfig, steps_per_epoch: int = 1) -> TrainState:
    """Model ``config``'s fresh state as a group member: :func:`create_train_state`'s params, key and step from
    ``PRNGKey(config.seed)``, the group optimizer (:func:`mlpjax.core.schedules.make_group_optimizer`: its
    structure does not depend on ``steps_per_epoch``), and ``dropout_rate`` set. ``model_config`` is the group's
    (its ``dropout`` is ignored by training: ``dropout_rate`` rules)."""
    state = create_train_state(jax.random.PRNGKey(config.seed), config, model_config)
    tx = schedules.make_group_optimizer(config, steps_per_epoch)
    return state.replace(
        tx=tx, opt_state=tx.init(state.params), dropout_rate=jnp.asarray(config.model.dropout, jnp.float32)
    )


def _leaves(state: TrainState) -> dict[str, Any]:
    return {
        "step": state.step,
        "params": state.params,
        "opt_state": state.opt_state,
        "key": state.key,
        "dropout_rate": state.dropout_rate,
    }


def stack_states(states: Sequence[TrainState]) -> TrainState:
    """One state whose leaves are ``states``' leaves stacked along a new leading axis (static fields: the
    first's; the optimizer's structure must be the same for all, its learning rate is in the state)."""
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[_leaves(s) for s in states])
    return states[0].replace(**stacked)


def stack_arrays(state: TrainState) -> dict[str, Any]:
    """The array leaves of a stacked state, as a sweep checkpoint saves them (``dropout_rate`` included)."""
    return _leaves(state)


def member(state: TrainState, k: int) -> TrainState:
    """Model ``k`` of a stacked state (its leaves without the model axis)."""
    return state.replace(**jax.tree_util.tree_map(lambda a: a[k], _leaves(state)))


def _injected(opt_state):
    """The state of the optimizer whose learning rate is injected (the first of a chain with the plateau)."""
    return opt_state if hasattr(opt_state, "hyperparams") else opt_state[0]


def learning_rates(state: TrainState) -> np.ndarray:
    """The ``(K,)`` base learning rates a stacked state trains with (before a schedule and the plateau)."""
    return np.asarray(_injected(state.opt_state).hyperparams["lr"])


def group_state(
    configs: Sequence[TrainConfig], model_config: model.ModelConfig, steps_per_epoch: int = 1
) -> TrainState:
    """The fresh stacked state of a group: :func:`member_state` of each config, stacked (``K = len(configs)``)."""
    return stack_states([member_state(c, model_config, steps_per_epoch) for c in configs])


def group_epoch(
    state: TrainState, rows: Rows, epoch: jax.Array, active: jax.Array, *, batch_size: int
) -> tuple[TrainState, dict[str, jax.Array]]:
    """:func:`mlpjax.training.steps.train_epoch` of every model of the stacked ``state`` on the same ``rows``: the new
    stacked state and ``loss``, ``accuracy`` of shape ``(K,)``. Model ``k`` consumes its own shuffle key of
    ``epoch`` and its dropout keys, as one run of it would; where ``active`` (``(K,)`` bool) is False, its state
    comes back unchanged. Jit with ``batch_size`` static."""
    epoch_fn = functools.partial(train_epoch, batch_size=batch_size)
    new, metrics = jax.vmap(epoch_fn, in_axes=(0, None, None))(state, rows, epoch)

    def keep(n, o):
        return jnp.where(active.reshape(active.shape + (1,) * (n.ndim - 1)), n, o)

    return state.replace(**jax.tree_util.tree_map(keep, _leaves(new), _leaves(state))), metrics


def set_member(tree: Any, k: int, value: Any) -> Any:
    """``tree`` (stacked leaves) with model ``k``'s leaves replaced by ``value``'s (placed as ``tree`` is)."""
    return jax.tree_util.tree_map(lambda a, v: a.at[k].set(jnp.asarray(v, a.dtype)), tree, value)


def group_evaluate_sums(params: model.Params, rows: Rows, **settings: Any) -> dict[str, jax.Array]:
    """:func:`mlpjax.training.steps.evaluate_sums` of stacked ``params`` (leading axis ``K``), with its keyword
    ``settings`` (``model_config``, ``loss_name``, ...): each sum with a leading ``K`` axis. Inference mode (no
    randomness). Jit with everything but ``params`` and ``rows`` static."""
    return jax.vmap(lambda p, r: evaluate_sums(p, r, **settings), in_axes=(0, None))(params, rows)


def model_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh of axis :data:`MODELS` over the first ``devices`` devices (None: all)."""
    found = jax.devices()
    devices = len(found) if devices is None else devices
    if not 1 <= devices <= len(found):
        raise FieldError("devices", f"must be between 1 and {len(found)} (the devices found), got {devices}")
    return Mesh(np.asarray(found[:devices]), (MODELS,))


def shard_models(tree: Any, mesh: Mesh | None) -> Any:
    """Put every leaf of ``tree`` on ``mesh``, split along its leading (model) axis; None: as it is."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(MODELS)))


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """Put every leaf of ``tree`` whole on each device of ``mesh``; None: as it is."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def padded_size(k: int, mesh: Mesh | None) -> int:
    """``k`` rounded up to a multiple of the mesh's devices (a group is padded with copies of its last model)."""
    n = 1 if mesh is None else mesh.size
    return -(-k // n) * n
