"""Keras' ``validation_split``: the last fraction of the training rows, before any shuffling, held out."""

from __future__ import annotations

import dataclasses
import math

from mlpjax import data
from mlpjax.errors import FieldError

TEST_NOTE = (
    "no validation split: val_* is measured on the test set, so every choice made from it (the best "
    "checkpoint, early stopping, the plateau) is a choice made on the test set"
)


def split(dataset: data.Dataset, fraction: float) -> tuple[data.Dataset, data.Dataset]:
    """``(train, val)`` for ``validation_split`` ``fraction`` in [0, 1).

    ``train`` holds the first ``floor(N * (1 - fraction))`` training rows (and the test split as it is); ``val``
    is a dataset whose *test* split is the remaining training rows, in their order (as Keras splits: before
    shuffling, so the held-out rows are never trained on). ``fraction`` 0: ``(dataset, dataset)``, validation
    on the test set. A split that leaves either side empty is a FieldError of ``validation_split``.
    """
    if fraction <= 0:
        return dataset, dataset
    n = len(dataset.y_train)
    at = math.floor(n * (1.0 - fraction))
    if at < 1 or at >= n:
        raise FieldError(
            "validation_split",
            f"{{field}} {fraction:g} of {n} training examples leaves "
            f"{at} to train on and {n - at} to validate on; both need at least 1",
        )
    train = dataclasses.replace(dataset, encoded_train=dataset.encoded_train[:at], y_train=dataset.y_train[:at])
    val = dataclasses.replace(dataset, encoded_test=dataset.encoded_train[at:], y_test=dataset.y_train[at:])
    return train, val
