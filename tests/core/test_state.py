"""The training state and its PRNG streams."""

import jax
import numpy as np
from conftest import small_config, state_for, toy_dataset

from mlpjax.core.state import abstract_state, dropout_key, shuffle_key


def shapes(tree):
    return [(np.shape(a), np.dtype(a.dtype)) for a in jax.tree_util.tree_leaves(tree)]


def test_shuffle_differs_per_epoch_and_dropout_per_step():
    state = state_for(small_config(), toy_dataset())
    assert not np.array_equal(shuffle_key(state, 0), shuffle_key(state, 1))
    assert not np.array_equal(dropout_key(state), dropout_key(state.replace(step=state.step + 1)))


def test_the_abstract_state_has_the_real_shapes_and_allocates_nothing():
    config = small_config(hidden=(16, 8))
    real, abstract = state_for(config, toy_dataset()), abstract_state(config, config.model_config(6, 2))
    assert shapes(real.arrays()) == shapes(abstract.arrays())
    assert all(isinstance(a, jax.ShapeDtypeStruct) for a in jax.tree_util.tree_leaves(abstract.arrays()))
