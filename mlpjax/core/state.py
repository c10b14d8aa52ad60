"""The training state as one pytree, and the PRNG streams it carries.

Randomness: ``create_train_state`` splits its key into the init key (the initial params) and the state key
kept in the state, so a resumed run continues the same streams: the dropout key of step ``s`` is
``fold_in(fold_in(state_key, 0), s)`` and the shuffle of 0-based epoch ``e`` is ``fold_in(fold_in(state_key, 1), e)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mlpjax.core import model, schedules
from mlpjax.core.config import TrainConfig

_DROPOUT_STREAM, _SHUFFLE_STREAM = 0, 1


class TrainState(struct.PyTreeNode):  # a flax struct dataclass that type checkers know
    """Everything that changes during training, as one pytree; the static fields define the computation."""

    step: jax.Array  # int32 scalar: optimizer steps taken
    params: model.Params
    opt_state: optax.OptState
    key: jax.Array  # the state key: dropout and shuffling streams (module docstring)
    model_config: model.ModelConfig = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    loss_name: str = struct.field(pytree_node=False, default="categorical_crossentropy")
    # None: model_config.dropout. A float32 scalar: the dropout rate as a traced value, so that the models of a
    # sweep (mlpjax.sweep.train), stacked along a leading axis, can each have their own; not part of arrays().
    dropout_rate: jax.Array | None = None

    def arrays(self) -> dict[str, jax.Array]:
        """The array leaves, as a checkpoint saves them: ``step``, ``params``, ``opt_state``, ``key``."""
        return {"step": self.step, "params": self.params, "opt_state": self.opt_state, "key": self.key}


def create_train_state(
    key: jax.Array, config: TrainConfig, model_config: model.ModelConfig, steps_per_epoch: int = 1
) -> TrainState:
    """Fresh state for ``config`` with architecture ``model_config``; consumes ``key`` (module docstring).

    ``steps_per_epoch`` sets the length of a learning-rate schedule (:mod:`mlpjax.core.schedules`); the state's
    structure does not depend on it, and ``fit`` rebuilds ``tx`` for the rows it trains on."""
    init_key, state_key = jax.random.split(key)
    params = model.init(init_key, model_config)
    tx = schedules.make_optimizer(config, steps_per_epoch)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        key=state_key,
        model_config=model_config,
        tx=tx,
        loss_name=config.loss,
    )


def abstract_state(config: TrainConfig, model_config: model.ModelConfig) -> TrainState:
    """The state :func:`create_train_state` would make, as shapes and dtypes (nothing allocated)."""
    return jax.eval_shape(lambda: create_train_state(jax.random.PRNGKey(config.seed), config, model_config))


def dropout_key(state: TrainState) -> jax.Array:
    """The dropout key of the state's current step."""
    return jax.random.fold_in(jax.random.fold_in(state.key, _DROPOUT_STREAM), state.step)


def shuffle_key(state: TrainState, epoch: int | jax.Array) -> jax.Array:
    """The shuffle key of 0-based ``epoch``."""
    return jax.random.fold_in(jax.random.fold_in(state.key, _SHUFFLE_STREAM), epoch)
