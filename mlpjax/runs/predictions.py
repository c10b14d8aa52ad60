"""Predictions of a saved model for many inputs at once, in the forms people use: the classes ranked, one JSON
record an input, a CSV table. Which names a run's model takes and gives (:func:`trained_on`) come from what it
was trained on. The probabilities themselves are :meth:`mlpjax.core.model.Classifier.predict_proba`'s.

Probabilities are written as the shortest decimal that reads back as the same float32 (``0.9731``, ``1e-07``).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import data as data_lib
from mlpjax import files
from mlpjax.runs.checkpoint import Checkpoint
from mlpjax.runs.run import check_fits, dataset_for


@dataclasses.dataclass(frozen=True)
class TrainedOn:
    """What a saved model was trained on, as prediction needs it: the ``dataset``'s name, its ``class_names`` (one
    per class: the class numbers where the data names none), ``image_shape`` ``(H, W)`` (None: rows of
    features), and for a table its ``feature_names`` (one per input, in the model's order) and ``label_column``
    (else ``()`` and ``""``). ``drawn_digits``: the images are a registered dataset's (mnist, digits, ...), so an
    image file is prepared as MNIST was (inverted where needed, cropped, centred); otherwise (an image folder, a
    ``tfds:`` set) as the training images were read: made grey and resized, nothing else."""

    dataset: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] | None = None
    feature_names: tuple[str, ...] = ()
    label_column: str = ""
    drawn_digits: bool = False


def trained_on(ckpt: Checkpoint, dataset: str | None = None, data_dir: str | os.PathLike | None = None) -> TrainedOn:
    """What ``ckpt``'s model was trained on (or ``dataset``, which must fit it). A registered dataset of images
    (mnist, fashion_mnist, digits) is described by its :class:`~mlpjax.data.DatasetSpec`, unread; any other is
    loaded as :func:`mlpjax.runs.run.dataset_for` loads it (a file again, from the path the run recorded),
    since its names are in it."""
    name = dataset or ckpt.config.dataset
    spec = data_lib.DATASETS.get(name)
    numbers = tuple(str(c) for c in range(ckpt.model_config.num_classes))
    if spec is not None and spec.image_shape is not None and spec.shape is not None:
        data_lib.check_data_dir(name, data_dir)
        check_fits(ckpt, name, spec.shape)
        return TrainedOn(name, spec.class_names or numbers, spec.image_shape, drawn_digits=True)
    ds = dataset_for(ckpt, dataset, data_dir)
    return TrainedOn(ds.name, ds.class_names or numbers, ds.image_shape, ds.feature_names, ds.label_column)


def ranked(probabilities: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` most probable classes of each row of ``probabilities`` ``(..., C)``, most probable first (of equal
    ones, the lower class first, as ``argmax`` picks): int ``(..., k)``."""
    return np.argsort(-np.asarray(probabilities), axis=-1, kind="stable")[..., :k]


def number(p: float) -> float:
    """``p`` as the shortest decimal that reads back as the same float32 (``0.9731``, not ``0.973099946975708``)."""
    return float(str(np.float32(p)))


def records(
    inputs: Sequence[Mapping[str, Any]], probabilities: np.ndarray, class_names: Sequence[str], top: int = 1
) -> list[dict[str, Any]]:
    """One JSON-ready record an input: the input's own keys (``inputs[i]``: its name, ``"input"``, and what it is),
    then its predicted ``class``, ``class_name`` and ``probability``, every class's ``probabilities`` by name (in
    class order) and the ``top`` classes ranked (``[{"class", "class_name", "probability"}, ...]``).
    ``probabilities``: ``(len(inputs), C)``."""
    out = []
    for given, probs, best in zip(inputs, probabilities, ranked(probabilities, top), strict=True):
        c = int(best[0])
        out.append(
            {
                **given,
                "class": c,
                "class_name": class_names[c],
                "probability": number(probs[c]),
                "probabilities": {name: number(p) for name, p in zip(class_names, probs, strict=True)},
                "top": [{"class": int(k), "class_name": class_names[k], "probability": number(probs[k])} for k in best],
            }
        )
    return out


def write_table(
    path: str | os.PathLike,
    first: str,
    keys: Sequence[object],
    probabilities: np.ndarray,
    class_names: Sequence[str],
) -> Path:
    """A new CSV file ``path`` of ``probabilities`` ``(n, C)``: the columns ``first`` (each input's key, ``keys``),
    ``class``, ``class_name`` and ``p(NAME)`` for each class. Written whole or not at all, never replacing a file
    (:func:`mlpjax.files.write_new`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([first, "class", "class_name", *(f"p({name})" for name in class_names)])
            for key, probs in zip(keys, probabilities, strict=True):
                c = int(np.argmax(probs))
                w.writerow([key, c, class_names[c], *(str(np.float32(p)) for p in probs)])

    return files.write_new(path, write)
