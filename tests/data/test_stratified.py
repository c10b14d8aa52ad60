"""mlpjax.data.stratified against scikit-learn's train_test_split itself: the same indices, in the same order."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from mlpjax.data.stratified import stratified_indices


def sklearn_indices(y, test_size, seed):
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)
    return train, test


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(2, 40), min_size=2, max_size=7),
    test_size=st.floats(0.05, 0.7),
    seed=st.integers(0, 2**31 - 1),
    order=st.integers(0, 2**31 - 1),
)
def test_the_same_split_as_scikit_learn(counts, test_size, seed, order):
    y = np.random.default_rng(order).permutation(np.repeat(np.arange(len(counts)), counts))
    try:
        expected = sklearn_indices(y, test_size, seed)
    except ValueError:
        with pytest.raises(ValueError):
            stratified_indices(y, test_size, seed)
        return
    train, test = stratified_indices(y, test_size, seed)
    np.testing.assert_array_equal(train, expected[0])
    np.testing.assert_array_equal(test, expected[1])


def test_ties_in_the_quotas_are_broken_as_scikit_learn_breaks_them():
    y = np.repeat(np.arange(7), 3)  # 21 rows, 7 equal classes: 12 train rows, remainders all equal
    for seed in range(20):
        train, test = stratified_indices(y, 0.4, seed)
        expected = sklearn_indices(y, 0.4, seed)
        np.testing.assert_array_equal(train, expected[0])
        np.testing.assert_array_equal(test, expected[1])


def test_digits_is_split_as_before():
    """load_digits reads scikit-learn's bundled file without importing scikit-learn: the same rows and split as
    sklearn.datasets.load_digits with train_test_split(test_size=0.25, stratify=y, random_state=0)."""
    from sklearn.datasets import load_digits as sk_digits

    from mlpjax.data.datasets import load_digits

    bunch = sk_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data.astype(np.uint8), bunch.target, test_size=0.25, stratify=bunch.target, random_state=0
    )
    ds = load_digits()
    np.testing.assert_array_equal(ds.encoded_train, x_train)
    np.testing.assert_array_equal(ds.encoded_test, x_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)


@pytest.mark.parametrize("y", [np.array([0, 0, 1]), np.array([0, 1, 0, 1])])
def test_impossible_splits_are_value_errors(y):
    with pytest.raises(ValueError):
        stratified_indices(y, 0.2 if len(y) == 3 else 0.1, 0)
