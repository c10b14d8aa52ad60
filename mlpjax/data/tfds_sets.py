"""``tfds:NAME[:CONFIG]``: any classification set of tensorflow-datasets (the ``tfds`` extra) whose input is an image
or a fixed-size vector of numbers and whose label is a class label (``tfds:kmnist``, ``tfds:emnist:digits``, which
may also be written ``tfds:emnist/digits``, ``tfds:iris``, ``tfds:cifar10``).

The pair is the dataset's ``supervised_keys``. Images are read as grey levels (as an image folder's:
:func:`mlpjax.data.images.grey`), resized to ``image_size`` (default:
the dataset's size, or the first image's where sizes vary) and kept as 8-bit levels; vectors as float32. The
class names are the ``ClassLabel``'s. The test rows are the ``test`` split; a dataset without one has
``test_split`` of its ``train`` split split off, stratified, seed 0, as a file's. The sizes are checked against
the memory there is before the examples are read. A dataset tfds has not prepared is downloaded (and prepared)
by tfds, only after its download host answered (:func:`mlpjax.data.datasets.download_refused`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable

import numpy as np

from mlpjax import memory
from mlpjax.data import images, tables
from mlpjax.errors import FieldError, UserInputError

PREFIX = "tfds:"
NAME = re.compile(r"[a-z0-9_]+([:/][A-Za-z0-9_.\-]+)?")  # NAME, NAME:CONFIG or NAME/CONFIG
INSTALL = "pip install 'mlpjax[tfds]'"


def is_tfds_name(name: str) -> bool:
    return name.startswith(PREFIX)


def check_tfds_name(name: str) -> str:
    """``name`` (``tfds:NAME[:CONFIG]``) if it is written as one; else one line saying how."""
    if not NAME.fullmatch(name[len(PREFIX) :]):
        raise UserInputError(
            f"{name}: expected tfds:NAME or tfds:NAME:CONFIG with a tensorflow-datasets name (lower case, digits, _), "
            "e.g. tfds:kmnist or tfds:emnist:digits"
        )
    return name


def builder_name(name: str) -> str:
    """tensorflow-datasets' name of ``tfds:NAME[:CONFIG]``: ``NAME`` or ``NAME/CONFIG``."""
    return check_tfds_name(name)[len(PREFIX) :].replace(":", "/", 1)


def load(
    name: str,
    image_size=None,
    test_split: float | None = None,
    *,
    download_refused: Callable[..., str | None],
) -> tables.Loaded:
    """What ``tfds:NAME[:CONFIG]`` ``name`` holds (the module's notes): a :class:`~mlpjax.data.tables.Loaded`
    naming no features, images as uint8 levels (``pixel_levels`` 255). ``download_refused(tfds, builder_name)``
    says why a download cannot succeed (None: it is prepared, or can be downloaded), and then ``name`` is
    refused."""
    size = images.check_image_size(image_size)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserInputError(
            f"{name}: reading a tensorflow-datasets set needs tensorflow-datasets: {INSTALL}"
        ) from None
    full = builder_name(name)
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # "Variant folder ... has no dataset_info.json": not prepared yet
    try:
        builder = tfds.builder(full)
        info = builder.info
    except tfds.core.registered.DatasetNotFoundError:
        raise UserInputError(
            f"{name}: tensorflow-datasets has no dataset {full.split('/')[0]!r}; its names are listed at "
            "https://www.tensorflow.org/datasets/catalog/overview"
        ) from None
    except Exception as e:  # noqa: BLE001  # tfds raises many types (an unknown config: ValueError)
        raise UserInputError(f"{name}: tensorflow-datasets cannot build it ({_first_line(e)})") from None
    finally:
        absl.setLevel(level)
    keys = info.supervised_keys
    if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
        raise UserInputError(f"{name}: not a classification set: tfds gives no (input, label) pair (supervised_keys)")
    x_key, y_key = keys
    x_feature, y_feature = info.features[x_key], info.features[y_key]
    if not isinstance(y_feature, tfds.features.ClassLabel):
        raise UserInputError(f"{name}: its label {y_key!r} is {type(y_feature).__name__}, not a class label")
    is_image = isinstance(x_feature, tfds.features.Image)
    shape = tuple(getattr(x_feature, "shape", ()) or ())
    if is_image:
        if np.dtype(x_feature.np_dtype) != np.uint8:
            raise UserInputError(
                f"{name}: its images are {np.dtype(x_feature.np_dtype)}; 8-bit (uint8) images are read"
            )
        if size is None and None not in shape[:2]:
            size = (int(shape[0]), int(shape[1]))
    else:
        if isinstance(x_feature, tfds.features.ClassLabel) or not shape or None in shape:
            raise UserInputError(
                f"{name}: its input {x_key!r} is {type(x_feature).__name__} of shape {shape}; an image or a "
                "fixed-size vector of numbers is read"
            )
        if np.dtype(x_feature.np_dtype).kind not in "biuf":
            raise UserInputError(f"{name}: its input {x_key!r} is of {np.dtype(x_feature.np_dtype)}; numbers are read")
        if size is not None:
            raise FieldError("image_size", f"{{field}}: {name} holds vectors of numbers, not images; drop {{field}}")
    why = download_refused(tfds, full)
    if why:
        raise UserInputError(
            f"{name}: not prepared by tensorflow-datasets and cannot be downloaded: {why}; download it once with a "
            "network (tfds keeps it, in ~/tensorflow_datasets), or train offline on a file or a folder of images"
        )
    train = _source(tfds, name, full, "train")
    prepared = _prepared_info(tfds, full) or info  # its splits and class names are known once it is prepared
    splits = set(prepared.splits)
    has_test = "test" in splits or not splits  # not known (tfds' mock data makes any split asked for): try it
    names = tuple(str(n) for n in prepared.features[y_key].names)
    names = () if names == tuple(str(c) for c in range(len(names))) else names
    reader = _Reader(name, x_key, y_key, is_image, size, math.prod(shape) if not is_image else 0)
    x, y = reader.read(train)
    if has_test:
        tables.refuse_test_split(test_split, name, "its split 'test'")
        x_test, y_test = reader.read(_source(tfds, name, full, "test"))
        pair_train, pair_test = (x, y), (x_test, y_test)
    else:
        pair_train, pair_test = tables.stratified_split(name, x, y, names, tables.check_test_split(test_split))
    levels = 255 if is_image else None
    return tables.Loaded(pair_train, pair_test, y_feature.num_classes, names, reader.size, pixel_levels=levels)


def _first_line(e: BaseException) -> str:
    return " ".join((str(e).strip().splitlines() or [type(e).__name__])[0].split())


def _prepared_info(tfds, full: str):
    """The ``DatasetInfo`` of dataset ``full`` as prepared (its splits, its class names), or None."""
    try:
        return tfds.builder(full).info
    except Exception:  # noqa: BLE001  # nothing known: the caller goes on with what the builder said
        return None


def _source(tfds, name: str, full: str, split: str):
    """``tfds.data_source`` of ``split`` (may download and prepare); every failure one line naming ``name``."""
    try:
        return tfds.data_source(full, split=split)
    except ImportError as e:  # a module tfds needs and does not declare
        raise UserInputError(
            f"{name}: tensorflow-datasets could not load it ({split}): it needs the missing module "
            f"{getattr(e, 'name', None) or e}: {INSTALL}"
        ) from None
    except Exception as e:  # noqa: BLE001  # tfds raises many types (network, checksum, unknown split)
        raise UserInputError(
            f"{name}: tensorflow-datasets could not load its split {split!r} ({_first_line(e)})"
        ) from None


class _Reader:
    """Reads a split's examples into ``(x (N, D), y (N,))``: images as uint8 levels of ``size`` (the first image's
    where None), vectors of ``width`` numbers as float32; the size checked against the memory first."""

    def __init__(self, name: str, x_key: str, y_key: str, is_image: bool, size, width: int):
        self.name, self.x_key, self.y_key, self.is_image, self.size, self.width = (
            name,
            x_key,
            y_key,
            is_image,
            size,
            width,
        )

    def read(self, source) -> tuple[np.ndarray, np.ndarray]:
        n = len(source)
        if n == 0:
            raise UserInputError(f"{self.name}: a split holds no examples")
        first = source[0]
        if self.is_image and self.size is None:
            self.size = tuple(int(s) for s in np.asarray(first[self.x_key]).shape[:2])
        width, itemsize = (self.size[0] * self.size[1], 1) if self.is_image else (self.width, 4)
        memory.check_allocation(self.name, 2 * n * (width * itemsize + 8), f"{n} examples of {width} features")
        x = np.empty((n, width), np.uint8 if self.is_image else np.float32)
        y = np.empty(n, np.int64)
        for i in range(n):
            example = first if i == 0 else source[i]
            x[i] = self._features(np.asarray(example[self.x_key]))
            y[i] = int(example[self.y_key])
        return x, y

    def _features(self, value: np.ndarray) -> np.ndarray:
        if not self.is_image:
            return value.reshape(-1)
        if value.ndim == 3 and value.shape[2] == 1 and value.shape[:2] == self.size:
            return value.reshape(-1)  # grey already, of the size asked for
        from PIL import Image

        grey = images.grey(Image.fromarray(value[..., 0] if value.shape[-1] == 1 else value))
        return images.levels(grey, self.size)
