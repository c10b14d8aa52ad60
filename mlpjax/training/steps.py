"""The pure functions of training: one step, one epoch as a single ``lax.scan``, evaluation sums.

Each takes its data as :class:`mlpjax.training.rows.Rows` and is jitted as it is (see
:mod:`mlpjax.training.compiled`): on a mesh, the shardings come from the placed arrays, and an epoch pins its state's
layout on the way out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlpjax.core import losses, metrics, model
from mlpjax.core.state import TrainState, dropout_key, shuffle_key
from mlpjax.training.rows import Rows

ProgressFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], None]
REPORTS_PER_EPOCH = 50  # how often an epoch calls its progress function


@jax.jit
def train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on ``batch`` (``image``, ``label``, optional ``weight``): the new state and the
    batch's weighted mean ``loss`` and ``accuracy``. Consumes the state's dropout key of this step; the dropout
    rate is ``state.dropout_rate`` where set, else the model config's."""
    grad_fn = jax.value_and_grad(
        functools.partial(
            losses.loss,
            model_config=state.model_config,
            loss_name=state.loss_name,
            train=True,
            dropout_rate=state.dropout_rate,
        ),
        has_aux=True,
    )
    (value, aux), grads = grad_fn(state.params, batch, dropout_key(state))
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, {"loss": value, "accuracy": aux["accuracy"]}


@functools.partial(jax.jit, static_argnames=("model_config", "loss_name", "example_metrics"))
def eval_step(
    params: model.Params,
    batch: dict[str, jax.Array],
    *,
    model_config: model.ModelConfig,
    loss_name: str = "categorical_crossentropy",
    example_metrics: tuple[str, ...] = (),
) -> dict[str, jax.Array]:
    """Sums over ``batch`` (padding of weight 0 excluded): ``loss``, ``count``, ``mse``, ``mae``, ``confusion``,
    and Keras' precision/recall counts ``above`` and ``hits`` (:func:`mlpjax.core.metrics.threshold_counts`);
    with ``example_metrics`` (registered metrics' names), each one's sum as ``metric:NAME``."""
    logits = model.apply(params, batch["image"], model_config=model_config)
    targets = model.one_hot(batch["label"], model_config.num_classes)
    weight = batch.get("weight", jnp.ones(batch["label"].shape, jnp.float32))
    probs = jax.nn.softmax(logits)
    errors = metrics.probability_errors(probs, targets)
    return {
        "loss": jnp.sum(losses.get_loss(loss_name)(logits, targets) * weight),
        "count": jnp.sum(weight),
        "mse": jnp.sum(errors["mse"] * weight),
        "mae": jnp.sum(errors["mae"] * weight),
        "confusion": metrics.confusion_matrix(batch["label"], jnp.argmax(logits, -1), model_config.num_classes, weight),
        **metrics.threshold_counts(probs, batch["label"], weight),
        **metrics.example_sums(example_metrics, probs, targets, weight),
    }


def train_epoch(
    state: TrainState, rows: Rows, epoch: jax.Array, *, batch_size: int, progress: ProgressFn | None = None
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One pass over ``rows`` in the shuffle of 0-based ``epoch``, as one ``lax.scan`` of :func:`train_step`.

    ``ceil(rows.count / batch_size)`` steps (the last partial batch is kept, as in Keras); returns the new state
    and the example-weighted mean ``loss`` and ``accuracy``. Consumes the state's shuffle key of ``epoch`` and
    the dropout key of each step. ``progress(step, loss_sum, correct_sum, seen)`` is called from the device
    about :data:`REPORTS_PER_EPOCH` times. Jit with ``batch_size`` and ``progress`` static.
    """
    order = jax.random.permutation(shuffle_key(state, epoch), rows.count)
    idx, weight = rows.batches(batch_size, order)
    report_every = max(1, idx.shape[0] // REPORTS_PER_EPOCH)

    def body(carry, inputs):
        state, loss_sum, correct_sum, seen = carry
        i, w, s = inputs
        state, m = train_step(state, rows.batch(i, w))
        count = jnp.sum(w)
        loss_sum, correct_sum, seen = loss_sum + m["loss"] * count, correct_sum + m["accuracy"] * count, seen + count
        if progress is not None:
            jax.lax.cond(
                (s + 1) % report_every == 0,
                lambda: jax.debug.callback(progress, s + 1, loss_sum, correct_sum, seen),
                lambda: None,
            )
        return (state, loss_sum, correct_sum, seen), None

    zero = jnp.zeros((), jnp.float32)
    steps = jnp.arange(idx.shape[0])
    (state, loss_sum, correct_sum, seen), _ = jax.lax.scan(body, (state, zero, zero, zero), (idx, weight, steps))
    means = {"loss": loss_sum / seen, "accuracy": correct_sum / seen}
    if rows.layout is None:
        return state, means
    return rows.layout.constrain(state), jax.lax.with_sharding_constraint(means, rows.layout.replicated)


def evaluate_sums(
    params: model.Params,
    rows: Rows,
    *,
    model_config: model.ModelConfig,
    loss_name: str,
    batch_size: int = 1000,
    example_metrics: tuple[str, ...] = (),
) -> dict[str, jax.Array]:
    """:func:`eval_step`'s sums over all of ``rows``, ``batch_size`` rows at a time (inference mode: no
    randomness). Jit with everything but ``params`` and ``rows`` static."""
    idx, weight = rows.batches(min(batch_size, rows.count))
    step = functools.partial(eval_step, model_config=model_config, loss_name=loss_name, example_metrics=example_metrics)

    def body(total, inputs):
        return jax.tree_util.tree_map(jnp.add, total, step(params, rows.batch(*inputs))), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, jax.eval_shape(lambda: step(params, rows.batch(idx[0], weight[0]))))
    sums = jax.lax.scan(body, zeros, (idx, weight))[0]
    return sums if rows.layout is None else jax.lax.with_sharding_constraint(sums, rows.layout.replicated)


def summarize(sums: dict[str, jax.Array]) -> dict[str, float]:
    """Evaluation sums as ``loss``, ``accuracy``, Keras' ``precision`` and ``recall``, ``precision_macro``,
    ``recall_macro``, ``f1_macro``, ``f1_score_<c>`` per class, ``mse``, ``mae`` (see :mod:`mlpjax.core.metrics`),
    and each registered metric of the sums by its name."""
    count, key = float(sums["count"]), metrics.EXAMPLE_KEY
    return {
        "loss": float(sums["loss"]) / count,
        **metrics.from_confusion(np.asarray(sums["confusion"])),
        **metrics.from_threshold_counts(float(sums["above"]), float(sums["hits"]), count),
        "mse": float(sums["mse"]) / count,
        "mae": float(sums["mae"]) / count,
        **{k.removeprefix(key): float(v) / count for k, v in sums.items() if k.startswith(key)},
    }
