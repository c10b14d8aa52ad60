"""A stratified, seeded train/test split of row indices: scikit-learn's ``train_test_split(..., stratify=y,
random_state=seed)`` (its ``StratifiedShuffleSplit``), the same indices in the same order, without importing
scikit-learn (whose import, scipy's included, is most of a small command's start-up).

Randomness: ``numpy.random.RandomState(seed)``, drawn from in scikit-learn's order (ties of the class quotas,
then each class's permutation, then the two sides' order). ``tests/data/test_stratified.py`` compares every
split with scikit-learn's own.
"""

from __future__ import annotations

import math

import numpy as np


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``n_draws`` rows each class gets: ``class_counts / total * n_draws`` floored, the rows left
    over given by largest remainder (ties broken by ``rng``), as ``sklearn.utils.extmath._approximate_mode``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_indices(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` int64 row indices of labels ``y`` ``(N,)``: ``ceil(test_size * N)`` test rows with each
    class in proportion, both sides shuffled. ``test_size`` in (0, 1). A ValueError (scikit-learn's reasons:
    a class of fewer than 2 rows, a side with fewer rows than there are classes) where no such split exists."""
    y = np.asarray(y)
    n = len(y)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(f"test_size {test_size} of {n} rows leaves no training row")
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError(f"classes {classes[class_counts < 2].tolist()} have only 1 member; at least 2 are needed")
    for side, size in (("train", n_train), ("test", n_test)):
        if size < len(classes):
            raise ValueError(f"the {side} side's {size} rows are fewer than the {len(classes)} classes")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(len(classes)):
        rows = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.append(rows[: n_i[i]])
        test.append(rows[n_i[i] : n_i[i] + t_i[i]])
    # arrays, not lists of numbers: the same permutations, without a Python object a row
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
