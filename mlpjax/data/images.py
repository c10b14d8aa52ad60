"""A folder of images, one subfolder per class (Keras' ``image_dataset_from_directory`` convention)::

    DIR/cat/001.png
    DIR/cat/002.jpg
    DIR/cat/kittens/001.png   (folders inside a class folder are walked too, as Keras walks them)
    DIR/dog/001.png

The class names are the subfolders' names, sorted; each image is read as grey levels (:func:`read_grey`: the
rules ``mlpjax predict --image`` reads a file with) and resized to one size (``image_size`` ``(H, W)``, default
the first image's; PIL's bilinear filter, anti-aliased when shrinking), kept as 8-bit levels. Polarity is kept:
no inversion, no cropping or centring. ``test_split`` of the images are split off as test images, stratified,
seed 0, as for a table (:func:`mlpjax.data.tables.stratified_split`).

Bounded: at most :data:`MAX_ENTRIES` entries are listed (a folder of a million files is refused after listing
that many, not after listing them all); each image's width x height is read from its header and checked
before its pixels are decoded (a decompression bomb is refused); the images' size as 8-bit levels is checked
against the memory there is before the second image is decoded. Names starting with ``.`` (hidden files and
folders) are passed over. A class's images are the image files anywhere under its folder, in sorted order of
their paths; links to folders inside a class folder are not followed (Keras' default), and refused rather than
silently passed over. Anything else (a file beside the class folders, a file without an image suffix, a class
folder without images) is refused in one line naming it.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from mlpjax import files, memory
from mlpjax.data import tables
from mlpjax.data.digest import folder_digest
from mlpjax.errors import FieldError, UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")  # what PIL is let open
MAX_PIXELS = 100_000_000  # larger images are refused before they are decoded
BYTES_PER_PIXEL = 40  # peak memory of reading a pixel: the decoded image and the float copies of grey()
MAX_ENTRIES = 250_000  # entries listed in an image folder, class folders and hidden files included
MAX_SIDE = 4096  # an image_size side


def check_image_size(value) -> tuple[int, int] | None:
    """``value`` as ``(H, W)``: None, a side ``N`` (square), ``"N"``, ``"HxW"`` or a pair; each side in
    [1, :data:`MAX_SIDE`]. Anything else is a FieldError of ``image_size``."""
    if value is None:
        return None
    pair: object = value
    if isinstance(value, str):
        try:
            pair = tuple(int(part) for part in value.lower().split("x"))
        except ValueError:
            pair = value
    elif isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    if isinstance(pair, (list, tuple)) and len(pair) == 1:
        pair = (pair[0], pair[0])
    if (
        not isinstance(pair, (list, tuple))
        or len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE for v in pair)
    ):
        raise FieldError(
            "image_size", f"must be a side N or HxW (rows x columns), each from 1 to {MAX_SIDE}, got {value!r}"
        )
    return (pair[0], pair[1])


def list_images(root: str) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """The class names (the subfolders of ``root``, sorted) and every image as ``(path relative to root, class)``,
    sorted by class, then path. See the module's notes for what is passed over and what is refused."""
    files.check_folder(root)
    seen = 0

    def entries(folder: str) -> list[os.DirEntry]:
        """The entries of ``folder`` but the hidden ones, sorted by name; at most MAX_ENTRIES listed in all."""
        nonlocal seen
        found = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        raise UserInputError(
                            f"{root}: more than {MAX_ENTRIES:,} entries (class folders and their files); an image "
                            f"folder is read up to {MAX_ENTRIES:,}: pack a larger set into an npz file (x, y)"
                        )
                    if not entry.name.startswith("."):
                        found.append(entry)
        except OSError as e:
            raise UserInputError(f"{folder}: cannot be read ({e.strerror or e})") from None
        return sorted(found, key=lambda e: e.name)

    classes = []
    for entry in entries(root):
        if not entry.is_dir():
            raise UserInputError(
                f"{entry.path}: a file beside the class folders; an image folder holds one subfolder of images per "
                "class (DIR/CLASS/IMAGE.png) and nothing else"
            )
        classes.append(entry.name)
    if len(classes) < 2:
        found = f"one class folder ({classes[0]!r})" if classes else "no class folder"
        raise UserInputError(
            f"{root}: holds {found}; an image folder holds one subfolder of images per class, at least two "
            "(DIR/CLASS/IMAGE.png)"
        )
    images: list[tuple[str, int]] = []
    for c, name in enumerate(classes):
        first = len(images)
        stack = [name]  # folders of this class still to list, relative to root; depth-first, in sorted order
        while stack:
            folder = stack.pop()
            inner = []
            for entry in entries(os.path.join(root, folder)):
                relative = f"{folder}/{entry.name}"
                if entry.is_symlink() and entry.is_dir():
                    raise UserInputError(
                        f"{entry.path}: a link to a folder inside class folder {name!r}; links to folders are not "
                        "followed there (they may loop): put the images themselves in the folder"
                    )
                if entry.is_dir():
                    inner.append(relative)
                elif Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
                    raise UserInputError(
                        f"{entry.path}: not an image file (by its name); a class folder holds image files (and "
                        "folders of them) only: " + ", ".join(IMAGE_SUFFIXES)
                    )
                else:
                    images.append((relative, c))
            stack.extend(reversed(inner))
        images[first:] = sorted(images[first:])
        if len(images) == first:
            raise UserInputError(f"{os.path.join(root, name)}: class folder {name!r} holds no image")
    return tuple(classes), images


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """The image file ``path`` (one of :data:`IMAGE_FORMATS`; its first frame) as float32 grey levels ``(H, W)`` in
    [0, 1] (:func:`grey`). Only a regular file is read; its width x height, from its header, must be at most
    :data:`MAX_PIXELS` and fit the memory available (at :data:`BYTES_PER_PIXEL`) before a pixel is decoded.
    Anything else (not an image, truncated, corrupt, a mode without grey) is one UserInputError naming the file."""
    from PIL import Image

    with (
        io.BufferedReader(files.open_regular(path)) as file,
        _image_errors(path),
        Image.open(file, formats=IMAGE_FORMATS) as image,
    ):
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise UserInputError(
                f"{path}: the image is {width}x{height} pixels, more than the {MAX_PIXELS // 10**6} megapixels read; "
                "scale it down"
            )
        memory.check_allocation(path, width * height * BYTES_PER_PIXEL, f"an image of {width}x{height} pixels")
        image.load()
        return grey(image)


def grey(image) -> np.ndarray:
    """A PIL image of any mode as float32 grey levels ``(H, W)`` in [0, 1]: colour through PIL's ``L`` (ITU-R 601
    luma), alpha composited on white; 16-bit, integer and float images stretched from their lowest to their highest
    value (a flat one is black)."""
    from PIL import Image

    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        a = np.asarray(image.convert("F"), np.float64)
        if not np.isfinite(a).all():
            raise UserInputError("the image contains NaN or infinite values")
        low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        return (np.zeros_like(a) if high <= low else (a - low) / (high - low)).astype(np.float32)
    mode = image.mode
    try:
        if "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        luma = image.convert("L") if image.mode in ("1", "L", "P", "RGB", "RGBA") else image.convert("RGB").convert("L")
    except ValueError:
        raise UserInputError(
            f"an image of mode {mode}, which has no conversion to grey; save it as greyscale or RGB"
        ) from None
    return np.asarray(luma, np.float32) / np.float32(255)


@contextlib.contextmanager
def _image_errors(path: str | os.PathLike):
    """What decoding ``path`` raises, as one UserInputError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # read_grey's own limit decides
            yield
    except UserInputError as e:
        raise UserInputError(str(e) if str(e).startswith(f"{path}:") else f"{path}: {e}") from None
    except Image.DecompressionBombError as e:
        raise UserInputError(
            f"{path}: too large an image ({e}); at most {MAX_PIXELS // 10**6} megapixels are read"
        ) from None
    except UnidentifiedImageError:
        raise UserInputError(f"{path}: not an image file; expected one of {', '.join(IMAGE_FORMATS)}") from None
    except MemoryError:
        raise UserInputError(f"{path}: not enough memory to decode the image") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt files (OSError, SyntaxError, ...)
        raise UserInputError(f"{path}: not a readable image ({' '.join(f'{type(e).__name__}: {e}'.split())})") from None


def levels(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey levels ``grey`` ``(h, w)`` float32 in [0, 1], resized to ``size`` ``(H, W)`` (PIL's bilinear filter,
    anti-aliased when shrinking) where they differ, as ``(H * W,)`` uint8 levels of 1/255."""
    from PIL import Image

    if grey.shape != size:
        resized = Image.fromarray(np.ascontiguousarray(grey, np.float32)).resize(
            (size[1], size[0]), Image.Resampling.BILINEAR
        )
        grey = np.clip(np.asarray(resized, np.float32), 0.0, 1.0)
    return np.rint(grey.reshape(-1) * np.float32(255)).astype(np.uint8)


def load_image_folder(path: str, image_size=None, test_split: float | None = None) -> tables.Loaded:
    """What image folder ``path`` holds (the module's notes; a :class:`~mlpjax.data.tables.Loaded` naming no
    features), the features uint8 levels of 1/255 ``(N, H * W)`` (``pixel_levels`` 255), ``image_shape``
    ``(H, W)``; its ``digest``: of the images' names and bytes (:func:`mlpjax.data.digest.folder_digest`)."""
    size = check_image_size(image_size)
    split = tables.check_test_split(test_split)
    classes, images = list_images(path)
    first = read_grey(os.path.join(path, images[0][0]))
    size = size or (int(first.shape[0]), int(first.shape[1]))
    h, w = size
    # the levels, and their split copy
    memory.check_allocation(path, 2 * len(images) * h * w, f"{len(images)} images of {h}x{w} pixels as 8-bit levels")
    x = np.empty((len(images), h * w), np.uint8)
    x[0] = levels(first, size)
    for i, (name, _) in enumerate(images[1:], 1):
        x[i] = levels(read_grey(os.path.join(path, name)), size)
    y = np.array([c for _, c in images], np.int32)
    train, test = tables.stratified_split(path, x, y, classes, split)
    digest = folder_digest(path, [name for name, _ in images])
    return tables.Loaded(train, test, len(classes), classes, size, pixel_levels=255, digest=digest)
