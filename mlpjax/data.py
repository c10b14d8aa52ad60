"""Datasets by name, as flattened float32 images in [0, 1] with int32 labels.

- ``mnist`` and ``fashion_mnist``: the four standard IDX files (gzipped or raw) from ``--data-dir DIR`` or
  ``$MLPJAX_DATA_DIR`` (the folder holding the files, or a folder with a ``mnist/`` or ``fashion_mnist/`` inside);
  where neither is given, through tensorflow-datasets (the ``tfds`` extra), which may download.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits, a fixed stratified 75/25 split; works offline.
- ``quadrants``: the tutorial's four points (1,1), (-1,1), (-1,-1), (1,-1) -> quadrants I-IV (classes 0-3).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np

from mlpjax.errors import UserInputError, check_name

DATA_DIR_ENV = "MLPJAX_DATA_DIR"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split: ``x_*`` ``(N, features)`` float32 in [0, 1], ``y_*`` ``(N,)`` int32 in [0, C)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, ...] | None = None  # (H, W) for image datasets, to draw samples
    class_names: tuple[str, ...] = ()
    # Every x is k / pixel_levels for an integer k in [0, pixel_levels] (255: 8-bit images; 16: digits), so the
    # images can be held as uint8 on the device (see to_levels); None for other data.
    pixel_levels: int | None = None

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    def head(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test examples (None: all), everything else kept."""
        return dataclasses.replace(self, x_train=self.x_train[:n_train], y_train=self.y_train[:n_train],
                                   x_test=self.x_test[:n_test], y_test=self.y_test[:n_test])

    def describe(self) -> dict[str, object]:
        """Shapes and sizes, as printed and written to metrics.json."""
        return {"name": self.name, "x_train": list(self.x_train.shape), "y_train": list(self.y_train.shape),
                "x_test": list(self.x_test.shape), "y_test": list(self.y_test.shape),
                "num_classes": self.num_classes}


def level_values(levels: int) -> np.ndarray:
    """``(levels + 1,)`` float32: the value of each pixel level ``k``, ``k / levels`` as the loaders compute it."""
    if not 1 <= levels <= 255:
        raise ValueError(f"pixel levels must be in [1, 255], got {levels}")
    return np.arange(levels + 1, dtype=np.float32) / np.float32(levels)


def to_levels(x: np.ndarray, levels: int, chunk: int = 8192) -> np.ndarray:
    """The integers ``k = x * levels`` as uint8, checked exact: ``level_values(levels)[k]`` is ``x`` bit for bit.

    Converted ``chunk`` rows at a time, so no float temporary of the whole array is made.
    """
    values = level_values(levels)
    out = np.empty(x.shape, np.uint8)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        k = np.clip(np.rint(part * np.float32(levels)), 0, levels).astype(np.uint8)
        if not np.array_equal(values[k], part):
            raise ValueError(f"rows {start}-{start + len(part) - 1} are not multiples of 1/{levels}")
        out[start:start + chunk] = k
    return out


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into an array of its declared shape; bad files raise UserInputError."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UserInputError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserInputError(f"{path}: cannot read ({e}); the file is truncated or not gzip data") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise UserInputError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}; "
                             "expected 00000801 for labels or 00000803 for images)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserInputError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise UserInputError(f"{path}: header declares shape {shape} ({expected} bytes) "
                             f"but the file has {len(raw)} bytes (short read or wrong count)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.exists():
            return candidate
    raise UserInputError(f"{folder}: missing {stem}.gz (or {stem}); an MNIST-format folder holds "
                         f"{', '.join(v + '.gz' for v in IDX_FILES.values())}")


def _resolve_folder(name: str, data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise UserInputError(f"data directory {data_dir} does not exist")
    for folder in (data_dir / name, data_dir / name.replace("_", "-"), data_dir):
        if any((folder / f"{IDX_FILES['x_train']}{ext}").exists() for ext in (".gz", "")):
            return folder
    return data_dir  # _find_idx names what is missing


def load_idx_folder(folder: str | os.PathLike, name: str = "mnist") -> Dataset:
    """The four IDX files in ``folder`` as a Dataset (images flattened and scaled by 1/255)."""
    folder = _resolve_folder(name, Path(folder))
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1:
            raise UserInputError(f"{folder}: {split} images must be 3-D and labels 1-D, "
                                 f"got shapes {x.shape} and {y.shape}")
        if len(x) != len(y):
            raise UserInputError(f"{folder}: {len(x)} {split} images but {len(y)} labels")
    h, w = arrays["x_train"].shape[1:]
    return make_dataset(
        name,
        arrays["x_train"].reshape(len(arrays["x_train"]), -1) / np.float32(255),
        arrays["y_train"], arrays["x_test"].reshape(len(arrays["x_test"]), -1) / np.float32(255),
        arrays["y_test"], num_classes=10, image_shape=(h, w), source=str(folder),
        class_names=FASHION_CLASSES if name == "fashion_mnist" else (), pixel_levels=255,
    )


def make_dataset(name: str, x_train, y_train, x_test, y_test, *, num_classes: int,
                 image_shape: tuple[int, ...] | None = None, source: str = "",
                 class_names: tuple[str, ...] = (), pixel_levels: int | None = None) -> Dataset:
    """Validate and package arrays: float32 features, int32 labels in [0, num_classes), no NaN or inf."""
    where = source or name
    out = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x = np.asarray(x, np.float32)
        y = np.asarray(y)
        if x.ndim != 2 or y.shape != (len(x),):
            raise UserInputError(f"{where}: {split} features must be (N, D) with N labels, "
                                 f"got {x.shape} and {y.shape}")
        if not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            raise UserInputError(f"{where}: {split} example {bad} contains NaN or infinite values")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            bad = int(np.argmax((y < 0) | (y >= num_classes)))
            raise UserInputError(f"{where}: {split} label {int(y[bad])} at index {bad} is out of range "
                                 f"[0, {num_classes})")
        out[split] = (x, y.astype(np.int32))
    if out["train"][0].shape[1] != out["test"][0].shape[1]:
        raise UserInputError(f"{where}: train and test feature sizes differ")
    return Dataset(name, *out["train"], *out["test"], num_classes=num_classes,
                   image_shape=image_shape, class_names=class_names, pixel_levels=pixel_levels)


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, values 0-16 scaled to [0, 1]), stratified 75/25 split, seed 0."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    x = bunch.data.astype(np.float32) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, bunch.target, test_size=0.25, stratify=bunch.target, random_state=0)
    return make_dataset("digits", x_train, y_train, x_test, y_test, num_classes=10, image_shape=(8, 8),
                        pixel_levels=16)


def load_quadrants() -> Dataset:
    """The tutorial's four points, one per quadrant; the test split is the same four points."""
    x = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    y = np.arange(4)
    return make_dataset("quadrants", x, y, x, y, num_classes=4,
                        class_names=("I", "II", "III", "IV"))


def load_tfds(name: str) -> Dataset:
    """``mnist`` or ``fashion_mnist`` through ``tfds.data_source`` (no TensorFlow needed; may download)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserInputError(
            f"dataset {name!r} not found: pass --data-dir DIR (a folder with the four IDX files), "
            f"set ${DATA_DIR_ENV}, or install the tfds extra (pip install 'mlpjax[tfds]') to download it"
        ) from None
    arrays = []
    for split in ("train", "test"):
        try:
            source = tfds.data_source(name, split=split)
            examples = [source[i] for i in range(len(source))]
        except Exception as e:  # tfds raises many types (network, checksum, missing builder)
            raise UserInputError(f"tensorflow-datasets could not load {name!r} ({split}): {e}; "
                                 f"pass --data-dir DIR or set ${DATA_DIR_ENV} instead") from None
        images = np.stack([np.asarray(ex["image"]) for ex in examples])
        arrays += [images.reshape(len(images), -1) / np.float32(255), np.array([ex["label"] for ex in examples])]
    h, w = images.shape[1:3]
    return make_dataset(name, *arrays, num_classes=10, image_shape=(h, w), source=f"tfds:{name}",
                        class_names=FASHION_CLASSES if name == "fashion_mnist" else (), pixel_levels=255)


DATASETS = ("mnist", "fashion_mnist", "digits", "quadrants")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load dataset ``name``; for the IDX datasets ``data_dir`` (else ``$MLPJAX_DATA_DIR``, else tfds)."""
    check_name("dataset", name, DATASETS)
    if name == "digits":
        return load_digits()
    if name == "quadrants":
        return load_quadrants()
    folder = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if folder:
        return load_idx_folder(folder, name)
    return load_tfds(name)
