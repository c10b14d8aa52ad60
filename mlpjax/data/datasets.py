"""Datasets by name: flattened images as float32 in [0, 1] (stored as 8-bit levels) with int32 labels.

- ``mnist`` and ``fashion_mnist``: the four standard IDX files (gzipped or raw) from a data folder or
  ``$MLPJAX_DATA_DIR`` (the folder holding the files, or a folder with a ``mnist/`` or ``fashion_mnist/`` inside);
  where neither is given, through tensorflow-datasets (the ``tfds`` extra), which may download.
- ``digits``: scikit-learn's bundled 8x8 handwritten digits, a fixed stratified 75/25 split; works offline.
- ``quadrants``: the tutorial's four points (1,1), (-1,1), (-1,-1), (1,-1) -> quadrants I-IV (classes 0-3).
- ``iris``, ``wine``, ``breast_cancer``: scikit-learn's bundled tables, 20 % split off as test rows.
- the user's own data: a file, ``FILE.npz``, ``FILE.csv``, ``FILE.tsv`` or ``FILE.parquet``
  (:mod:`mlpjax.data.tables`), or a folder of images ``DIR/`` (:mod:`mlpjax.data.images`); the Dataset records a
  digest of what it was read from (:mod:`mlpjax.data.digest`).
- ``tfds:NAME[:CONFIG]``: a classification set of tensorflow-datasets (:mod:`mlpjax.data.tfds_sets`).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlpjax import files
from mlpjax.data import images, tables, tfds_sets
from mlpjax.data.digest import Digest, file_digest
from mlpjax.data.idx import read_idx
from mlpjax.data.stratified import stratified_indices
from mlpjax.errors import FieldError, UserInputError, check_int

DATA_DIR_ENV = "MLPJAX_DATA_DIR"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# How the IDX datasets' canonical files are told apart (their names are the same): the SHA-256 of the training
# labels as read (the label bytes, whatever the compression), and of the canonical train-labels .gz download
# (tensorflow-datasets' checksums). A folder whose files are verifiably another dataset's is refused.
KNOWN_TRAIN_LABELS = {
    "mnist": {
        "labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    "fashion_mnist": {"gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
}
# Where tensorflow-datasets downloads from (its builders' url_infos hosts; GCS for the prepared copies): a
# download is tried only if one answers within NETWORK_TIMEOUT seconds, not after minutes of retries.
DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
NETWORK_TIMEOUT = 3.0
OFFLINE_CHOICES = (
    f"give {{field}} DIR (a folder with the four IDX files), set ${DATA_DIR_ENV}, or train "
    "offline with --dataset digits"
)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A train/test split: features ``x_*`` ``(N, D)`` float32 (in [0, 1] for images), labels ``y_*`` ``(N,)``
    int32 in [0, C).

    The features are stored encoded as ``encoded_*`` ``(N, D)``: for images (``pixel_levels`` set), the uint8
    levels ``k`` that stand for ``k / pixel_levels`` (255 for 8-bit images, 16 for the 8x8 digits), a quarter of
    float32's memory; else the float32 features themselves. ``x_*`` decodes them on first use and keeps the
    result; training reads ``encoded_*`` (see :class:`mlpjax.training.rows.Rows`) and never builds it.
    ``digest``: of the file or folder the data was read from (None: a dataset by name, or data made in Python).
    ``dropped_rows``: the rows of the file left out for a NaN or a missing value (``nan="drop"``).
    """

    name: str
    encoded_train: np.ndarray
    y_train: np.ndarray
    encoded_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    image_shape: tuple[int, int] | None = None  # (H, W) for image datasets, to draw samples
    class_names: tuple[str, ...] = ()
    pixel_levels: int | None = None
    feature_names: tuple[str, ...] = ()  # where the source names them (a table's header): one per feature
    label_column: str = ""  # the table column the labels came from ("": none)
    digest: Digest | None = None
    dropped_rows: int = 0

    def __post_init__(self):
        """Everything above checked, however the Dataset is built: a :class:`FieldError` naming the field."""
        if not isinstance(self.name, str) or not self.name:
            raise FieldError("name", f"must be a non-empty string (the dataset's name), got {self.name!r}")
        where = f"dataset {self.name!r}"
        check_int("num_classes", self.num_classes)
        check_int("dropped_rows", self.dropped_rows, 0)
        if self.pixel_levels is not None:
            check_int("pixel_levels", self.pixel_levels, 1, 255)
        if self.digest is not None and not isinstance(self.digest, Digest):
            raise FieldError("digest", f"must be a Digest or None, got {self.digest!r}", where=where)
        stored = np.uint8 if self.pixel_levels is not None else np.float32
        for split in ("train", "test"):
            x, y = getattr(self, f"encoded_{split}"), getattr(self, f"y_{split}")
            for field, array in ((f"encoded_{split}", x), (f"y_{split}", y)):
                if not isinstance(array, np.ndarray):
                    raise FieldError(field, f"must be a numpy array, got {type(array).__name__}", where=where)
            if x.ndim != 2:
                raise FieldError(f"encoded_{split}", f"must be 2-D (N, D), got shape {x.shape}", where=where)
            if x.dtype != stored:
                raise FieldError(
                    f"encoded_{split}",
                    f"must be {np.dtype(stored)} with pixel_levels "
                    f"{self.pixel_levels}, got {x.dtype} (build datasets with make_dataset)",
                    where=where,
                )
            if split == "test" and x.shape[1] != self.encoded_train.shape[1]:
                raise FieldError(
                    "encoded_test",
                    f"has {x.shape[1]} features; encoded_train has {self.encoded_train.shape[1]}",
                    where=where,
                )
            if y.ndim != 1 or len(y) != len(x):
                raise FieldError(
                    f"y_{split}",
                    f"has {len(y)} labels for {len(x)} examples; must be (N,) with N = {len(x)}"
                    if y.ndim == 1
                    else f"must be 1-D (N,), got shape {y.shape}",
                    where=where,
                )
            if y.dtype != np.int32:
                raise FieldError(
                    f"y_{split}",
                    f"must be integers (int32) in [0, {self.num_classes}), got {y.dtype} "
                    "(make_dataset converts whole numbers)",
                    where=where,
                )
            bad = (y < 0) | (y >= self.num_classes)
            if bad.any():
                i = int(np.argmax(bad))
                raise FieldError(
                    f"y_{split}", f"label {y[i]} at index {i} is out of range [0, {self.num_classes})", where=where
                )
            if x.dtype == np.float32 and not np.isfinite(x).all():
                raise FieldError(
                    f"encoded_{split}",
                    f"example {int(np.argwhere(~np.isfinite(x))[0][0])} contains NaN or infinite values",
                    where=where,
                )
            if self.pixel_levels is not None and x.size and x.max() > self.pixel_levels:
                raise FieldError(
                    f"encoded_{split}", f"levels must lie in [0, {self.pixel_levels}], got {x.max()}", where=where
                )
        if self.feature_names and len(self.feature_names) != self.input_dim:
            raise FieldError(
                "feature_names",
                f"names {len(self.feature_names)} features; the data has {self.input_dim} (give one name each, "
                "or none)",
                where=where,
            )
        if self.image_shape is not None and (
            len(self.image_shape) != 2 or self.image_shape[0] * self.image_shape[1] != self.input_dim
        ):
            raise FieldError(
                "image_shape",
                f"must be (H, W) with H x W = {self.input_dim} features, got {self.image_shape!r}",
                where=where,
            )

    @functools.cached_property
    def x_train(self) -> np.ndarray:
        return features(self.encoded_train, self.pixel_levels)

    @functools.cached_property
    def x_test(self) -> np.ndarray:
        return features(self.encoded_test, self.pixel_levels)

    @property
    def input_dim(self) -> int:
        return int(self.encoded_train.shape[1])

    def test_example(self, index: int) -> tuple[np.ndarray, int]:
        """Test example ``index``: its ``(D,)`` float32 features and its label (without building ``x_test``)."""
        return features(self.encoded_test[index], self.pixel_levels), int(self.y_test[index])

    def head(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` training and ``n_test`` test examples (None: all), everything else kept."""
        return dataclasses.replace(
            self,
            encoded_train=self.encoded_train[:n_train],
            y_train=self.y_train[:n_train],
            encoded_test=self.encoded_test[:n_test],
            y_test=self.y_test[:n_test],
        )

    def dropped_note(self) -> str:
        """What :attr:`dropped_rows` says, as the commands print it ("": none dropped)."""
        if not self.dropped_rows:
            return ""
        rows = "row" if self.dropped_rows == 1 else "rows"
        return f"{self.dropped_rows} {rows} holding a NaN, an infinity or a missing value dropped"

    def describe(self) -> dict[str, object]:
        """Shapes and sizes (and the class names, feature names, label column and digest, where there are), as
        printed and written to metrics.json."""
        return {
            "name": self.name,
            "x_train": list(self.encoded_train.shape),
            "y_train": list(self.y_train.shape),
            "x_test": list(self.encoded_test.shape),
            "y_test": list(self.y_test.shape),
            "num_classes": self.num_classes,
            **({"class_names": list(self.class_names)} if self.class_names else {}),
            **({"feature_names": list(self.feature_names)} if self.feature_names else {}),
            **({"label_column": self.label_column} if self.label_column else {}),
            **({"digest": self.digest.to_dict()} if self.digest is not None else {}),
            **({"dropped_rows": self.dropped_rows} if self.dropped_rows else {}),
        }


def features(encoded: np.ndarray, pixel_levels: int | None) -> np.ndarray:
    """float32 features of ``encoded`` ones (any shape): ``level_values(pixel_levels)[encoded]``, or as they are."""
    return encoded if pixel_levels is None else level_values(pixel_levels)[encoded]


def level_values(levels: int) -> np.ndarray:
    """``(levels + 1,)`` float32: the value of each pixel level ``k``, ``k / levels`` as the loaders compute it."""
    if not 1 <= levels <= 255:
        raise ValueError(f"pixel levels must be in [1, 255], got {levels}")
    return np.arange(levels + 1, dtype=np.float32) / np.float32(levels)


def to_levels(x: np.ndarray, levels: int, chunk: int = 8192) -> np.ndarray:
    """The integers ``k = x * levels`` as uint8, checked exact: ``level_values(levels)[k]`` is ``x`` bit for bit.

    Integer ``x`` is taken as the levels themselves (checked to lie in [0, levels]). Float ``x`` is converted
    ``chunk`` rows at a time, so no float temporary of the whole array is made.
    """
    values = level_values(levels)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > levels):
            raise ValueError(f"pixel levels must lie in [0, {levels}], got {x.min()} to {x.max()}")
        return x.astype(np.uint8, copy=False)
    out = np.empty(x.shape, np.uint8)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        k = np.clip(np.rint(part * np.float32(levels)), 0, levels).astype(np.uint8)
        if not np.array_equal(values[k], part):
            raise ValueError(f"rows {start}-{start + len(part) - 1} are not multiples of 1/{levels}")
        out[start : start + chunk] = k
    return out


def _find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem.gz`` or ``folder/stem``, whichever has a directory entry (what it is, open_regular checks)."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if os.path.lexists(candidate):
            return candidate
    raise UserInputError(
        f"{folder}: missing {stem}.gz (or {stem}); an MNIST-format folder holds "
        f"{', '.join(v + '.gz' for v in IDX_FILES.values())}"
    )


def _resolve_folder(name: str, data_dir: Path) -> Path:
    """The folder of ``data_dir`` holding dataset ``name``'s IDX files: ``data_dir/name`` or ``data_dir``."""
    try:
        files.check_folder(data_dir)
    except UserInputError as e:
        raise UserInputError(f"data folder {e}") from None
    for folder in (data_dir / name, data_dir / name.replace("_", "-"), data_dir):
        if any(os.path.lexists(folder / f"{IDX_FILES['x_train']}{ext}") for ext in (".gz", "")):
            return folder
    return data_dir  # _find_idx names what is missing


def idx_files(folder: str | os.PathLike, name: str = "mnist") -> dict[str, Path]:
    """The four IDX files of dataset ``name`` in ``folder`` (or its ``name/`` subfolder), by key of
    :data:`IDX_FILES`: ``folder/stem.gz`` or ``folder/stem``. A missing one is a UserInputError naming it."""
    folder = _resolve_folder(name, Path(folder))
    return {key: _find_idx(folder, stem) for key, stem in IDX_FILES.items()}


def load_idx_folder(folder: str | os.PathLike, name: str = "mnist") -> Dataset:
    """The four IDX files in ``folder`` as a Dataset (images flattened, kept as 8-bit levels of 1/255).

    Each file is read by :func:`read_idx`; then each split must hold at least one image of at least 1x1
    pixels, as many labels as images, and the same image size as the other split.
    """
    found = idx_files(folder, name)
    arrays = {key: read_idx(path) for key, path in found.items()}
    _check_files_are(name, found["y_train"], arrays["y_train"])
    for split in ("train", "test"):
        _check_idx_split(found, arrays, split)
    h, w = arrays["x_train"].shape[1:]
    return make_dataset(
        name,
        (arrays["x_train"].reshape(len(arrays["x_train"]), -1), arrays["y_train"]),
        (arrays["x_test"].reshape(len(arrays["x_test"]), -1), arrays["y_test"]),
        num_classes=10,
        image_shape=(h, w),
        source=str(folder),
        pixel_levels=255,
    )


def _check_files_are(name: str, path: Path, labels: np.ndarray) -> None:
    """Refuse training labels ``labels`` (read from ``path``) that are verifiably another dataset's
    (:data:`KNOWN_TRAIN_LABELS`): MNIST's labels in any compression, Fashion-MNIST's canonical .gz."""
    found = {}  # the canonical labels are unsigned bytes: other types are no known dataset's (and are not cast)
    if labels.dtype == np.uint8:
        found["labels"] = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    if path.name.endswith(".gz"):
        with files.open_regular(path) as f:
            if os.fstat(f.fileno()).st_size < 2**20:  # the canonical .gz are 29 KB; a larger one is not one
                found["gz"] = hashlib.sha256(f.read(2**20)).hexdigest()
    for other, digests in KNOWN_TRAIN_LABELS.items():
        if other != name and any(found.get(k) == v for k, v in digests.items()):
            raise FieldError(
                "dataset",
                f"{path.parent}: holds the files of {other!r}, not of {name!r} (its training "
                f"labels are {other}'s); give {{field}} {other}, or a folder with {name}'s files (e.g. "
                f"a {name}/ folder inside ${DATA_DIR_ENV})",
            )


def _check_idx_split(found: dict[str, Path], arrays: dict[str, np.ndarray], split: str) -> None:
    """One split's images ``(N, H, W)``, N >= 1, H, W >= 1, the train split's H x W, and ``(N,)`` labels."""
    x, y, path = arrays[f"x_{split}"], arrays[f"y_{split}"], found[f"x_{split}"]
    if x.ndim != 3 or y.ndim != 1:
        raise UserInputError(
            f"{path.parent}: {split} images must be 3-D and labels 1-D, got shapes {x.shape} and {y.shape}"
        )
    if len(x) == 0:
        raise UserInputError(f"{path}: holds no images (shape {x.shape})")
    if 0 in x.shape[1:] or x.shape[1:] != arrays["x_train"].shape[1:]:
        raise UserInputError(
            f"{path}: images of {x.shape[1]}x{x.shape[2]} pixels; expected at least 1x1"
            + (
                ""
                if split == "train"
                else f" and the train images' {arrays['x_train'].shape[1]}x{arrays['x_train'].shape[2]}"
            )
        )
    if len(x) != len(y):
        raise UserInputError(f"{path.parent}: {len(x)} {split} images but {len(y)} labels")


def make_dataset(
    name: str,
    train: tuple,
    test: tuple,
    *,
    num_classes: int,
    image_shape: tuple[int, int] | None = None,
    source: str = "",
    pixel_levels: int | None = None,
) -> Dataset:
    """Validate and package ``train`` and ``test``, each ``(features (N, D), labels (N,))``: real-number features
    (no complex, strings or objects), no NaN or inf; labels whole numbers in [0, num_classes), stored as int32.
    Class names come from the registry (:data:`DATASETS`) for its names (others:
    ``dataclasses.replace(dataset, class_names=...)``).

    With ``pixel_levels``, the features are integer levels in [0, pixel_levels] (e.g. uint8 pixels) or floats that
    are exact multiples of ``1 / pixel_levels``; they are stored as uint8 levels. Else float32 features.
    """
    where = source or name
    check_int("num_classes", num_classes)
    out = {}
    for split, pair in (("train", train), ("test", test)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            got = f"{len(pair)} items" if isinstance(pair, (tuple, list)) else type(pair).__name__
            raise FieldError(split, f"must be a pair (features, labels), got {got}", where=where)
        x, y = pair
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise UserInputError(f"{where}: {split} features are {x.dtype}; expected real numbers (integers or floats)")
        x = x if pixel_levels is not None and np.issubdtype(x.dtype, np.integer) else x.astype(np.float32, copy=False)
        y = np.asarray(y)
        if x.ndim != 2 or y.shape != (len(x),):
            raise UserInputError(f"{where}: {split} features must be (N, D) with N labels, got {x.shape} and {y.shape}")
        if x.dtype == np.float32 and not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            raise UserInputError(f"{where}: {split} example {bad} contains NaN or infinite values")
        if pixel_levels is not None:
            try:
                x = to_levels(x, pixel_levels)
            except ValueError as e:
                raise UserInputError(f"{where}: {split} images: {e}") from None
        out[split] = (x, class_labels(y, num_classes, f"{where}: {split}"))
    if out["train"][0].shape[1] != out["test"][0].shape[1]:
        raise UserInputError(f"{where}: train and test feature sizes differ")
    return Dataset(
        name,
        *out["train"],
        *out["test"],
        num_classes=num_classes,
        image_shape=image_shape,
        class_names=_class_names(name),
        pixel_levels=pixel_levels,
    )


def class_labels(y: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """``y`` as int32 class numbers, if every label is a whole number in [0, num_classes) (integers, or floats
    that are whole); else a UserInputError naming the first bad label and its index (NaN included)."""
    if y.dtype.kind not in "biuf":
        raise UserInputError(f"{where} labels are {y.dtype}, expected class numbers in [0, {num_classes})")
    bad = ~((y >= 0) & (y < num_classes))  # NaN compares false: bad
    if y.dtype.kind == "f":
        bad |= np.floor(y) != y
    if bad.any():
        i = int(np.argmax(bad))
        value = y[i].item()
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        why = "is not a whole number in" if isinstance(value, float) else "is out of range"
        raise UserInputError(f"{where} label {value} at index {i} {why} [0, {num_classes})")
    return y.astype(np.int32)


def _sklearn_data_file(name: str) -> Path:
    """The path of scikit-learn's bundled data file ``sklearn/datasets/data/NAME``, found without importing
    scikit-learn (whose import, scipy's included, is a second of a small command's start-up)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError("dataset 'digits' is scikit-learn's: install scikit-learn (pip install scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.is_file():
        raise UserInputError(f"dataset 'digits': scikit-learn's data file {path} is missing; reinstall scikit-learn")
    return path


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, values 0-16 scaled to [0, 1]), stratified 75/25 split, seed 0.
    Read from scikit-learn's bundled ``digits.csv.gz`` as ``sklearn.datasets.load_digits`` reads it, and split as
    ``train_test_split(test_size=0.25, stratify=y, random_state=0)`` splits it (:mod:`mlpjax.data.stratified`),
    without importing scikit-learn."""
    with gzip.open(_sklearn_data_file("digits.csv.gz"), "rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    x, y = table[:, :-1].astype(np.uint8), table[:, -1].astype(int)  # levels 0-16
    train, test = stratified_indices(y, 0.25, seed=0)
    return make_dataset(
        "digits", (x[train], y[train]), (x[test], y[test]), num_classes=10, image_shape=(8, 8), pixel_levels=16
    )


def load_quadrants() -> Dataset:
    """The tutorial's four points, one per quadrant; the test split is the same four points."""
    x = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    y = np.arange(4)
    return make_dataset("quadrants", (x, y), (x, y), num_classes=4)


def load_tfds_set(name: str, image_size=None, test_split: float | None = None) -> Dataset:
    """``tfds:NAME[:CONFIG]`` ``name`` (:mod:`mlpjax.data.tfds_sets`), downloaded by tfds where it is not prepared
    and its download host answers."""
    return _loaded(name, tfds_sets.load(name, image_size, test_split, download_refused=download_refused), source=name)


def load_tfds(name: str) -> Dataset:
    """``mnist`` or ``fashion_mnist`` through ``tfds.data_source``; may download.

    Reading a prepared dataset needs no TensorFlow, but tfds prepares MNIST (the first download) with TensorFlow,
    which the ``tfds`` extra therefore installs together with ``importlib_resources`` (imported by tfds 4.9 on
    every Python, declared by it only for Python < 3.9).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise FieldError(
            "data_dir",
            f"dataset {name!r} not found: give {{field}} DIR (a folder with the four IDX "
            f"files), set ${DATA_DIR_ENV}, or install the tfds extra (pip install 'mlpjax[tfds]') "
            "to download it",
        ) from None
    _check_download_possible(tfds, name)
    arrays = []
    for split in ("train", "test"):
        try:
            source = tfds.data_source(name, split=split)
            examples = [source[i] for i in range(len(source))]
        except ImportError as e:  # a module tfds needs and does not declare (importlib_resources, tensorflow)
            raise FieldError(
                "data_dir",
                f"tensorflow-datasets could not load {name!r} ({split}): it needs the "
                f"missing module {getattr(e, 'name', None) or e}: pip install 'mlpjax[tfds]' (tfds with "
                f"what it needs), or give {{field}} DIR (a folder with the four IDX files) or set "
                f"${DATA_DIR_ENV}",
            ) from None
        except Exception as e:  # tfds raises many types (network, checksum, missing builder)
            raise FieldError(
                "data_dir",
                f"tensorflow-datasets could not load {name!r} ({split}): {e}; "
                f"give {{field}} DIR or set ${DATA_DIR_ENV} instead",
            ) from None
        images = np.stack([np.asarray(ex["image"]) for ex in examples])
        arrays += [images.reshape(len(images), -1), np.array([ex["label"] for ex in examples])]
    h, w = images.shape[1:3]
    return make_dataset(
        name,
        tuple(arrays[:2]),
        tuple(arrays[2:]),
        num_classes=10,
        image_shape=(h, w),
        source=f"tfds:{name}",
        pixel_levels=255,
    )


def reachable(host: str, port: int, timeout: float = NETWORK_TIMEOUT) -> bool:
    """Whether a TCP connection to ``host``:``port`` opens within ``timeout`` seconds (the name lookup included,
    which has no timeout of its own: it runs in a thread that is left behind if it hangs)."""
    answer: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except (OSError, ValueError):
            answer.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return bool(answer and answer[0])


def _check_download_possible(tfds, name: str) -> None:
    """Before tfds would download ``name`` (it is not prepared in tfds' data folder), its download host must answer
    within :data:`NETWORK_TIMEOUT` seconds; else one FieldError of ``data_dir`` naming the offline choices."""
    why = download_refused(tfds, name)
    if why:
        raise FieldError(
            "data_dir", f"dataset {name!r} is not on disk and cannot be downloaded: {why}; " + OFFLINE_CHOICES
        )


def download_refused(tfds, name: str) -> str | None:
    """Why tfds cannot have dataset ``name`` (tfds' name): None where it is prepared in tfds' data folder or its
    download host (:data:`DOWNLOAD_HOSTS`, else the builder's first URL's) answers within :data:`NETWORK_TIMEOUT`
    seconds; else ``"HOST did not answer within 3 s (no network?)"``."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # "Variant folder ... has no dataset_info.json": not prepared, as asked
    try:
        prepared = tfds.builder(name).is_prepared()
    except Exception:  # noqa: BLE001  # tfds raises many types: data_source below says what is wrong
        prepared = False
    finally:
        absl.setLevel(level)
    if prepared:
        return None
    host, port = DOWNLOAD_HOSTS.get(name) or _download_host(tfds, name)
    return None if reachable(host, port) else f"{host} did not answer within {NETWORK_TIMEOUT:g} s (no network?)"


def _download_host(tfds, name: str) -> tuple[str, int]:
    """Where tfds downloads dataset ``name`` from: its builder's first URL's host (tfds' prepared copies on GCS
    where the builder lists none)."""
    from urllib.parse import urlsplit

    try:
        urls = list(tfds.builder_cls(name.split("/")[0]).url_infos or ())
        url = urlsplit(urls[0])
        if url.hostname:
            return url.hostname, url.port or (80 if url.scheme == "http" else 443)
    except Exception:  # noqa: BLE001  # no URL known: tfds' own copies
        pass
    return DOWNLOAD_HOSTS["mnist"]


def load_table_dataset(name: str, test_split: float | None = None) -> Dataset:
    """scikit-learn's bundled table ``name`` (``iris``, ``wine``, ``breast_cancer``) as a Dataset, ``test_split``
    (None: 20 %) of its rows split off as test rows."""
    return _loaded(name, tables.load_sklearn_table(name, test_split))


def load_file(
    path: str | os.PathLike,
    label_column: str | None = None,
    *,
    test_split: float | None = None,
    image_size=None,
    nan: str = tables.NAN_ERROR,
) -> Dataset:
    """The dataset in file or folder ``path`` (``FILE.npz``, ``FILE.csv``, ``FILE.tsv``, ``FILE.parquet``:
    :mod:`mlpjax.data.tables`; a folder of images ``DIR/``: :mod:`mlpjax.data.images`), named by its path as
    given, with the :class:`Digest` of its bytes; ``label_column``: a table's column of labels (None: its last);
    ``test_split``: the fraction of the rows split off where the file has no test rows (None: 20 %);
    ``image_size``: an image folder's ``(H, W)`` (None: its first image's); ``nan``: ``"error"`` refuses a NaN or
    a missing value in a file, ``"drop"`` drops the rows holding one (:attr:`Dataset.dropped_rows`)."""
    name = os.fspath(path)
    check_options(name, label_column=label_column, test_split=test_split, image_size=image_size, nan=nan)
    if tables.is_folder_name(name):
        return _loaded(name, images.load_image_folder(name, image_size, test_split), source=name)
    loaded = tables.load_file(name, label_column, test_split, nan)
    return _loaded(name, dataclasses.replace(loaded, digest=file_digest(name)), source=name)


def _loaded(name: str, loaded: tables.Loaded, source: str = "") -> Dataset:
    """The Dataset ``name`` of what :mod:`mlpjax.data.tables` (or :mod:`.images`, :mod:`.tfds_sets`) read, its
    names and digest kept."""
    ds = make_dataset(
        name,
        loaded.train,
        loaded.test,
        num_classes=loaded.num_classes,
        image_shape=loaded.image_shape,
        source=source,
        pixel_levels=loaded.pixel_levels,
    )
    return dataclasses.replace(
        ds,
        class_names=loaded.class_names,
        feature_names=loaded.feature_names,
        label_column=loaded.label_column,
        digest=loaded.digest,
        dropped_rows=loaded.dropped_rows,
    )


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset by name: ``load(data_dir)`` builds it (``data_dir`` is None where not given); training runs
    ``default_epochs`` epochs unless told otherwise; ``about`` is one line for help texts; ``shape`` is its
    ``(input_dim, num_classes)``, known without loading it (None: load it to know); ``reads_folder``: whether
    ``load`` reads ``data_dir`` (else a folder given is refused, :func:`check_data_dir`); ``image_shape``: the
    ``(H, W)`` of its images, known without loading it (None: not images, or load it to know); ``splits``: whether
    its test rows are split off, ``load(data_dir, test_split=F)`` choosing how many."""

    load: Callable[..., Dataset]
    default_epochs: int
    about: str
    class_names: tuple[str, ...] = ()
    shape: tuple[int, int] | None = None
    reads_folder: bool = False
    image_shape: tuple[int, int] | None = None
    splits: bool = False


def load_mnist_like(name: str, data_dir: str | os.PathLike | None) -> Dataset:
    """``name`` from ``data_dir`` (else ``$MLPJAX_DATA_DIR``) holding the four IDX files, else through tfds."""
    folder = data_dir or os.environ.get(DATA_DIR_ENV) or None
    return load_idx_folder(folder, name) if folder else load_tfds(name)


IRIS_EPOCHS, TABLE_EPOCHS = 200, 100  # one or a few steps per epoch on these small tables
# The tutorial's 2 epochs on MNIST; the small sets need more passes to converge. Add a dataset here.
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        lambda d: load_mnist_like("mnist", d),
        2,
        "handwritten digits, 28x28 (IDX files or tfds)",
        shape=(784, 10),
        reads_folder=True,
        image_shape=(28, 28),
    ),
    "fashion_mnist": DatasetSpec(
        lambda d: load_mnist_like("fashion_mnist", d),
        2,
        "clothes, 28x28 (IDX files or tfds)",
        FASHION_CLASSES,
        shape=(784, 10),
        reads_folder=True,
        image_shape=(28, 28),
    ),
    "digits": DatasetSpec(
        lambda d: load_digits(), 20, "scikit-learn's 8x8 digits (offline)", shape=(64, 10), image_shape=(8, 8)
    ),
    "quadrants": DatasetSpec(
        lambda d: load_quadrants(), 300, "the tutorial's four points", ("I", "II", "III", "IV"), shape=(2, 4)
    ),
    "iris": DatasetSpec(
        lambda d, test_split=None: load_table_dataset("iris", test_split),
        IRIS_EPOCHS,
        "scikit-learn's iris table (offline)",
        ("setosa", "versicolor", "virginica"),
        shape=(4, 3),
        splits=True,
    ),
    "wine": DatasetSpec(
        lambda d, test_split=None: load_table_dataset("wine", test_split),
        IRIS_EPOCHS,
        "scikit-learn's wine table (offline)",
        ("class_0", "class_1", "class_2"),
        shape=(13, 3),
        splits=True,
    ),
    "breast_cancer": DatasetSpec(
        lambda d, test_split=None: load_table_dataset("breast_cancer", test_split),
        TABLE_EPOCHS,
        "scikit-learn's breast cancer table (offline)",
        ("malignant", "benign"),
        shape=(30, 2),
        splits=True,
    ),
}
FILE_EPOCHS = TABLE_EPOCHS  # a file's size is not known before it is read (an image folder's neither)
TFDS_EPOCHS = 10  # tensorflow-datasets' sets are larger (kmnist: 60,000 images, 469 steps an epoch)
SOURCES = "a file FILE.npz, FILE.csv, FILE.tsv or FILE.parquet, a folder of images DIR/, or tfds:NAME[:CONFIG]"


def _class_names(name: str) -> tuple[str, ...]:
    return DATASETS[name].class_names if name in DATASETS else ()


def is_path(name: str) -> bool:
    """Whether dataset ``name`` is a file's or a folder's path (not a registered name, nor ``tfds:NAME``)."""
    return name not in DATASETS and not tfds_sets.is_tfds_name(name) and tables.is_file_name(name)


def get_spec(name: str | os.PathLike) -> DatasetSpec:
    """The registered dataset ``name``, or the spec of ``tfds:NAME[:CONFIG]`` or of a file or folder (``name`` with
    a suffix or a ``/``, or a folder: FILE.npz, FILE.csv, FILE.tsv, FILE.parquet, DIR/; read when loaded, not
    here); an unknown name lists the valid ones."""
    name = os.fspath(name)
    if name in DATASETS:
        return DATASETS[name]
    if tfds_sets.is_tfds_name(name):
        tfds_sets.check_tfds_name(name)
        about = f"the tensorflow-datasets set {name[len(tfds_sets.PREFIX) :]}"
        return DatasetSpec(lambda d, **options: load_tfds_set(name, **options), TFDS_EPOCHS, about, splits=True)
    if tables.is_file_name(name):
        tables.check_file_name(name)
        about = f"the {'image folder' if tables.is_folder_name(name) else 'file'} {name}"
        return DatasetSpec(lambda d, **options: load_file(name, **options), FILE_EPOCHS, about, splits=True)
    raise UserInputError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}, or {SOURCES}")


def check_options(
    name: str,
    *,
    label_column: str | None = None,
    test_split: float | None = None,
    image_size=None,
    nan: str = tables.NAN_ERROR,
) -> None:
    """Refuse a ``label_column``, ``test_split``, ``image_size`` or ``nan`` that cannot apply to dataset ``name``
    (a FieldError of that field): a label column needs a table, a test split data without test rows of its own, an
    image size an image folder or ``tfds:NAME`` (whether a file or tfds set has test rows, or images, its
    loader says), ``nan="drop"`` a file (npz, CSV, TSV, Parquet: images and datasets by name hold no NaN)."""
    spec = get_spec(name)
    if tables.check_nan(nan) == tables.NAN_DROP and not (is_path(name) and not tables.is_folder_name(name)):
        raise FieldError(
            "nan",
            f"{{field}} {nan} needs a file (FILE.npz, FILE.csv, FILE.tsv, FILE.parquet) as {{dataset}}, got "
            f"{name!r}, which holds no NaN; drop {{field}}",
            also=("dataset",),
        )
    if label_column is not None:
        tables.check_label_column(name, label_column)
    if test_split is not None:
        tables.check_test_split(test_split)
        if not spec.splits:
            tables.refuse_test_split(test_split, repr(name), "a fixed split")
    if image_size is not None:
        images.check_image_size(image_size)
        if not (tfds_sets.is_tfds_name(name) or (is_path(name) and tables.is_folder_name(name))):
            raise FieldError(
                "image_size",
                f"{{field}} needs a folder of images or a tfds:NAME set as {{dataset}}, got {name!r}",
                also=("dataset",),
            )


def check_data_dir(name: str, data_dir: str | os.PathLike | None) -> None:
    """Refuse a ``data_dir`` given for dataset ``name`` whose loader reads no folder: a FieldError of ``data_dir``."""
    spec = get_spec(name)
    if data_dir is not None and not spec.reads_folder:
        raise FieldError(
            "data_dir",
            f"{{field}} {os.fsdecode(data_dir)} is not read: dataset {name!r} needs no "
            f"folder ({spec.about}); drop {{field}}",
        )


def load_dataset(
    name: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    label_column: str | None = None,
    test_split: float | None = None,
    image_size=None,
    nan: str = tables.NAN_ERROR,
) -> Dataset:
    """Load dataset ``name`` (a registered name, ``tfds:NAME[:CONFIG]``, a file or a folder: :func:`get_spec`); for
    the IDX datasets ``data_dir`` (else ``$MLPJAX_DATA_DIR``, else tfds); for a CSV, TSV or Parquet file, its
    ``label_column`` (None: the last); ``test_split``: the fraction split off as test rows where the data has none
    (None: 20 %); ``image_size``: ``(H, W)`` (or ``N``, ``"HxW"``) the images of a folder or a tfds set are resized
    to (None: the first one's); ``nan``: ``"error"`` (a NaN or a missing value in a file is refused, naming its row
    and column) or ``"drop"`` (the rows holding one are dropped and counted: :attr:`Dataset.dropped_rows`). Options
    that cannot apply are refused (:func:`check_options`)."""
    name = os.fspath(name)
    check_options(name, label_column=label_column, test_split=test_split, image_size=image_size, nan=nan)
    folder = None if data_dir is None else os.fspath(data_dir)
    if is_path(name):
        return load_file(name, label_column, test_split=test_split, image_size=image_size, nan=nan)
    if tfds_sets.is_tfds_name(name):
        return load_tfds_set(name, image_size, test_split)
    spec = get_spec(name)
    return spec.load(folder) if test_split is None else spec.load(folder, test_split=test_split)
