"""The pure steps: one optimizer step, an epoch as one scan."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from conftest import small_config, state_for, toy_dataset

from mlpjax.training.rows import Rows
from mlpjax.training.steps import train_epoch, train_step


def test_train_step_lowers_the_loss_on_a_fixed_batch():
    ds = toy_dataset()
    state = state_for(small_config(dropout=0.0, lr=0.01), ds)
    batch = {"image": jnp.asarray(ds.x_train), "label": jnp.asarray(ds.y_train)}
    first = None
    for _ in range(30):
        state, metrics = train_step(state, batch)
        first = first if first is not None else float(metrics["loss"])
    assert int(state.step) == 30
    assert float(metrics["loss"]) < 0.7 * first


def test_an_epoch_keeps_the_last_partial_batch():
    ds = toy_dataset(n_train=70)
    state = state_for(small_config(batch_size=32), ds)
    epoch = jax.jit(functools.partial(train_epoch, batch_size=32))  # jitted as it is: rows carry their layout
    state, metrics = epoch(state, Rows.from_dataset(ds, "train"), jnp.asarray(0))
    assert int(state.step) == math.ceil(70 / 32) == 3
    assert 0 <= float(metrics["accuracy"]) <= 1 and np.isfinite(float(metrics["loss"]))
