"""Rows on the devices: batches that cover every example once, uint8 levels looked up exactly."""

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import data
from mlpjax.training.rows import Rows, batch_indices


def test_batch_indices_cover_every_example_once():
    order = jax.random.permutation(jax.random.PRNGKey(0), 10)
    idx, weight = batch_indices(10, 4, order)
    assert idx.shape == (3, 4) and weight.shape == (3, 4)
    kept = np.asarray(idx)[np.asarray(weight) > 0]
    np.testing.assert_array_equal(np.sort(kept), np.arange(10))
    np.testing.assert_array_equal(np.asarray(weight).sum(), 10)


def test_a_batch_of_levels_is_the_float_batch_bit_for_bit(digits):
    rows = Rows.from_dataset(digits, "train")
    assert rows.x.dtype == jnp.uint8 and rows.count == len(digits.y_train) and rows.pixel_levels == 16
    idx, weight = rows.batches(100)
    batch = jax.jit(lambda r, i, w: r.batch(i, w))(rows, idx[1], weight[1])
    np.testing.assert_array_equal(batch["image"], digits.x_train[np.asarray(idx[1])])
    np.testing.assert_array_equal(batch["label"], digits.y_train[np.asarray(idx[1])])
    floats = Rows.place(digits.x_train, digits.y_train)  # floats that are levels are stored as floats
    assert floats.x.dtype == jnp.float32 and floats.pixel_levels is None
    assert Rows.place(digits.x_train, digits.y_train, pixel_levels=16).x.dtype == jnp.uint8
    assert data.to_levels(digits.x_train, 16).max() == 16
