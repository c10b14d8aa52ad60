"""Feature scaling fitted on the training rows: :class:`Scaler` (``TrainConfig.normalize``, ``--normalize``).

``minmax`` and ``standard`` compute what scikit-learn's ``MinMaxScaler`` and ``StandardScaler`` compute (tested
against them): per feature, ``(x - shift) / scale`` with ``shift, scale`` the minimum and the range, or the mean
and the population standard deviation, of the rows it is fitted on; a constant feature gets scale 1 (as
scikit-learn's ``_handle_zeros_in_scale``). The statistics are accumulated in float64 over chunks of rows and kept
as float32, the type training computes in. Which rows it is fitted on (the training rows left after the
validation split, never validation or test rows) is :func:`mlpjax.training.train.make_plan`'s business; a run
saves the scaler with its checkpoints and the model applies it to raw features
(:meth:`mlpjax.core.model.Classifier.predict_proba`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlpjax.data.datasets import Dataset, features
from mlpjax.errors import FieldError, UserInputError

# TrainConfig.normalize's values and what each does (the help of --normalize)
KINDS = {
    "none": "features as they are",
    "minmax": "(x - min) / (max - min) of the training rows, as scikit-learn's MinMaxScaler",
    "standard": "(x - mean) / std of the training rows, as scikit-learn's StandardScaler",
}
CHUNK = 8192  # rows converted to float at a time: no float copy of a whole uint8 image set is made to fit


def check_kind(kind: object) -> str:
    """``kind`` if it is one of :data:`KINDS`, else a FieldError of ``normalize`` listing them."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise FieldError("normalize", f"{{field}} {kind!r} is unknown; valid: {', '.join(KINDS)}")
    return kind


@dataclasses.dataclass(frozen=True, eq=False)
class Scaler:
    """Per-feature scaling ``apply(x) = (x - shift) / scale``: ``shift`` and ``scale`` float32 ``(D,)``, finite,
    ``scale > 0``; ``kind`` is ``"minmax"`` or ``"standard"``, how they were fitted (:func:`fit_scaler`).
    Checked on construction (a FieldError naming the field): a scaler read from a file is validated as one made
    here."""

    kind: str
    shift: np.ndarray
    scale: np.ndarray

    def __post_init__(self):
        if check_kind(self.kind) == "none":
            raise FieldError("kind", "must be 'minmax' or 'standard' for a Scaler ('none' is no Scaler: None)")
        for field in ("shift", "scale"):
            a = getattr(self, field)
            if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.ndim != 1:
                shown = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
                raise FieldError(field, f"must be a float32 (features,) array, got {shown}")
            if not np.isfinite(a).all():
                raise FieldError(field, f"must be finite; feature {int(np.argmin(np.isfinite(a)))} is not")
        if self.shift.shape != self.scale.shape:
            raise FieldError("scale", f"has {self.scale.shape[0]} features; shift has {self.shift.shape[0]}")
        if not (self.scale > 0).all():
            raise FieldError("scale", f"must be positive; feature {int(np.argmin(self.scale > 0))} is not")

    @property
    def width(self) -> int:
        """The number of features ``D``."""
        return int(self.shift.shape[0])

    def apply(self, x) -> np.ndarray:
        """``(x - shift) / scale`` as float32, for ``x`` ``(..., D)``; a value that leaves float32's range is
        inf (callers that need finite features check them)."""
        with np.errstate(over="ignore"):
            return (np.asarray(x, np.float32) - self.shift) / self.scale

    def arrays(self) -> dict[str, np.ndarray]:
        """``shift`` and ``scale``, as a checkpoint saves them."""
        return {"shift": self.shift, "scale": self.scale}

    def describe(self) -> dict[str, object]:
        """What ``metrics.json`` and ``summary`` say of it: its kind, its features and what it computes."""
        return {"kind": self.kind, "features": self.width, "computes": f"(x - shift) / scale ({KINDS[self.kind]})"}

    def same_as(self, other: Scaler | None) -> bool:
        """Whether ``other`` is the same scaling, bit for bit."""
        return (
            other is not None
            and other.kind == self.kind
            and np.array_equal(other.shift, self.shift)
            and np.array_equal(other.scale, self.scale)
        )


def fit_scaler(x, kind: str, *, pixel_levels: int | None = None, chunk: int = CHUNK) -> Scaler | None:
    """The :class:`Scaler` of ``kind`` fitted on rows ``x`` ``(N, D)`` (N >= 1), or None for ``"none"``.

    ``minmax``: shift the minimum, scale the range; ``standard``: shift the mean, scale the population standard
    deviation (``ddof=0``, as scikit-learn). A feature whose values are all equal gets scale 1 (its scaled value is
    ``x - shift``, 0 on those rows). ``x`` may be encoded (uint8 levels of ``1 / pixel_levels``, as a Dataset
    stores images): it is decoded ``chunk`` rows at a time. Deterministic."""
    if check_kind(kind) == "none":
        return None
    x = np.asarray(x)
    if x.ndim != 2 or len(x) == 0:
        raise FieldError("x", f"must be (N, D) rows with N >= 1 to fit a scaling on, got shape {x.shape}")
    d = x.shape[1]
    low, high, total = np.full(d, np.inf), np.full(d, -np.inf), np.zeros(d)
    for part in _chunks(x, pixel_levels, chunk):
        low, high = np.minimum(low, part.min(axis=0)), np.maximum(high, part.max(axis=0))
        total += part.sum(axis=0)
    constant = low == high
    if kind == "minmax":
        shift, scale = low, high - low
    else:
        shift = total / len(x)
        squares = np.zeros(d)
        for part in _chunks(x, pixel_levels, chunk):
            squares += ((part - shift) ** 2).sum(axis=0)
        scale = np.sqrt(squares / len(x))
    scale32 = np.where(constant, 1.0, scale).astype(np.float32)
    scale32[scale32 == 0] = 1  # a range below float32's smallest number: no scaling, rather than a division by 0
    return Scaler(kind, shift.astype(np.float32), scale32)


def _chunks(x: np.ndarray, pixel_levels: int | None, chunk: int):
    """``x``'s rows as float64 features, ``chunk`` at a time."""
    for start in range(0, len(x), chunk):
        yield features(x[start : start + chunk], pixel_levels).astype(np.float64)


def fit_on_training_rows(dataset: Dataset, kind: str) -> Scaler | None:
    """:func:`fit_scaler` of ``kind`` on ``dataset``'s training rows (its ``encoded_train``), never its test rows."""
    return fit_scaler(dataset.encoded_train, kind, pixel_levels=dataset.pixel_levels)


def scaled_dataset(dataset: Dataset, scaler: Scaler | None) -> Dataset:
    """``dataset`` with its training and test features scaled (float32; images lose their ``pixel_levels``: 4 bytes
    a feature in place of 1), everything else kept; ``scaler`` None: ``dataset`` itself. A scaled value beyond
    float32's range is a UserInputError naming the row and feature."""
    if scaler is None:
        return dataset
    if scaler.width != dataset.input_dim:
        raise FieldError("scaler", f"scales {scaler.width} features; dataset {dataset.name!r} has {dataset.input_dim}")
    scaled: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        encoded = getattr(dataset, f"encoded_{split}")
        out = np.empty(encoded.shape, np.float32)
        for start in range(0, len(encoded), CHUNK):
            part = scaler.apply(features(encoded[start : start + CHUNK], dataset.pixel_levels))
            if not np.isfinite(part).all():
                row, column = (int(i) for i in np.argwhere(~np.isfinite(part))[0])
                raise UserInputError(
                    f"dataset {dataset.name!r}: {split} row {start + row}, feature {column} scaled by the "
                    f"{scaler.kind} scaling leaves float32's range; train it with normalize 'none'"
                )
            out[start : start + len(part)] = part
        scaled[f"encoded_{split}"] = out
    return dataclasses.replace(
        dataset, pixel_levels=None, encoded_train=scaled["encoded_train"], encoded_test=scaled["encoded_test"]
    )
