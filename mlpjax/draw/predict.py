"""Predict with a trained model: a test sample drawn to a PNG, or a digit image file of any size.

Image files go through :func:`mlpjax.draw.preprocess.canvas_to_mnist` (grey levels, inverted to white-on-black
where the background is light, cropped, scaled and centred like MNIST) and are then resized to the model's
input side ``sqrt(input_dim)`` when that is not 28. No randomness.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlpjax.core import model
from mlpjax.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The predicted class of one input, its probability, all ``(num_classes,)`` probabilities, the true label."""

    label: int
    probability: float
    probabilities: np.ndarray
    true_label: int | None = None

    def describe(self, sep: str = ", ", names: Sequence[str] = (), top: int = 1) -> str:
        """ "predicted 3 (p=0.982), true 3"; with the class ``names``: "predicted 3 setosa (p=...), true 3 setosa";
        with ``top`` K > 1, the next K - 1 classes too: "predicted 3 (p=0.982), then 8 (p=0.010), 5 (p=0.004)"."""
        from mlpjax.runs.predictions import ranked

        def named(c: int) -> str:
            return f"{c} {names[c]}" if names and names[c] != str(c) else str(c)

        text = f"predicted {named(self.label)} (p={self.probability:.3f})"
        following = [int(c) for c in ranked(self.probabilities, top)[1:]]
        if following:
            text += ", then " + ", ".join(f"{named(c)} (p={self.probabilities[c]:.3f})" for c in following)
        return text if self.true_label is None else f"{text}{sep}true {named(self.true_label)}"


def predict_one(classifier: model.Classifier, x, true_label: int | None = None) -> Prediction:
    """Predict one flattened input ``x`` ``(input_dim,)``."""
    return prediction(classifier.predict_proba(np.asarray(x, np.float32).reshape(-1)), true_label)


def prediction(probabilities: np.ndarray, true_label: int | None = None) -> Prediction:
    """The :class:`Prediction` of one input's ``probabilities`` ``(num_classes,)``: its most probable class."""
    probs = np.asarray(probabilities)
    label = int(probs.argmax())
    return Prediction(label, float(probs[label]), probs, None if true_label is None else int(true_label))


def input_side(input_dim: int) -> int:
    """The side of a square image of ``input_dim`` pixels; a UserInputError if the model's input is not square."""
    side = math.isqrt(input_dim)
    if side * side != input_dim:
        raise UserInputError(
            f"the model takes {input_dim} features, not a square image: predicting an image "
            "needs an image model (e.g. trained on mnist or digits)"
        )
    return side


MAX_PIXELS = 100_000_000  # larger image files are refused before they are decoded
BYTES_PER_PIXEL = 40  # peak memory of load_image per pixel: the decoded image and preprocessing's float copies
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM")


def load_image(path: str | os.PathLike, input_dim: int) -> np.ndarray:
    """A digit image file (PNG, JPEG, ...; any size, either polarity) as the model's input ``(input_dim,)``.

    The file is read by :func:`read_grey`; every bad file (missing, not a regular file, not an image, truncated,
    too large, an unconvertible mode, no ink) raises UserInputError naming it.
    """
    from PIL import Image

    from mlpjax.draw import preprocess

    path = Path(path)
    side = input_side(input_dim)
    try:
        digit = preprocess.canvas_to_mnist(read_grey(path))
    except UserInputError as e:
        raise UserInputError(_named(path, e)) from None
    if side != digit.shape[0]:
        digit = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BOX), np.float32)
        digit = np.clip(digit, 0.0, 1.0)
    return digit.reshape(-1)


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """The image file ``path`` (one of :data:`IMAGE_FORMATS`; the first frame) as float32 grey levels ``(H, W)``
    in [0, 1], whatever its mode: colour is averaged, alpha composited on white, 16-bit, integer and float
    images stretched from their lowest to their highest value.

    Only a regular file is read. Its width x height, read from the header, must be at most :data:`MAX_PIXELS`
    and fit in the memory available (at :data:`BYTES_PER_PIXEL`) before a pixel is decoded. Anything else
    (not an image, truncated, corrupt, a mode with no grey conversion) raises UserInputError naming the file.
    """
    import io

    from PIL import Image

    from mlpjax import files
    from mlpjax.draw import preprocess

    path = Path(path)
    with (
        io.BufferedReader(files.open_regular(path)) as file,
        _image_errors(path),
        Image.open(file, formats=IMAGE_FORMATS) as image,
    ):
        _check_image_size(path, image.size)
        image.load()
        return preprocess.to_gray(_grey_source(image))


@contextlib.contextmanager
def _image_errors(path: Path):
    """Turn what decoding ``path`` raises into one UserInputError that names the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _check_image_size decides
            yield
    except UserInputError as e:
        raise UserInputError(_named(path, e)) from None
    except Image.DecompressionBombError as e:
        raise UserInputError(
            f"{path}: too large an image ({e}); at most {MAX_PIXELS // 10**6} megapixels are read"
        ) from None
    except UnidentifiedImageError:
        raise UserInputError(f"{path}: not an image file; expected one of {', '.join(IMAGE_FORMATS)}") from None
    except MemoryError:
        raise UserInputError(f"{path}: not enough memory to decode the image") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for corrupt files (OSError, SyntaxError, ...)
        reason = " ".join(f"{type(e).__name__}: {e}".split())
        raise UserInputError(f"{path}: not a readable image ({reason})") from None


def _named(path: Path, error: UserInputError) -> str:
    """The message of ``error``, starting with ``path``."""
    return str(error) if str(error).startswith(f"{path}:") else f"{path}: {error}"


def _check_image_size(path: Path, size: tuple[int, int]) -> None:
    """Refuse an image of ``size`` (width, height) beyond :data:`MAX_PIXELS` or the memory available."""
    from mlpjax import memory

    width, height = size
    if width * height > MAX_PIXELS:
        raise UserInputError(
            f"{path}: the image is {width}x{height} pixels, more than the "
            f"{MAX_PIXELS // 10**6} megapixels read; scale it down"
        )
    memory.check_allocation(path, width * height * BYTES_PER_PIXEL, f"an image of {width}x{height} pixels")


def _grey_source(image):
    """``image`` in a form :func:`mlpjax.draw.preprocess.to_gray` reads: itself for the modes it converts (1, L, P,
    RGB and alpha modes), a float32 array stretched to [0, 1] for 16-bit, integer and float modes, else RGB."""
    if image.mode in ("1", "L", "P", "RGB", "RGBA", "LA", "PA"):
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        a = np.asarray(image.convert("F"), np.float32)
        if not np.isfinite(a).all():
            raise UserInputError("the image contains NaN or infinite values")
        low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if not high > low:
            return np.zeros_like(a)
        # in float64: the span of finite float32 values (up to 2 x 3.4e38) overflows float32
        return ((a.astype(np.float64) - low) / (high - low)).astype(np.float32)
    try:
        return image.convert("RGBA" if image.mode.endswith(("A", "a")) else "RGB")
    except ValueError:
        raise UserInputError(
            f"an image of mode {image.mode}, which has no conversion to grey; save it as greyscale or RGB"
        ) from None


def save_png(image: np.ndarray, title: str, path: str | os.PathLike) -> Path:
    """Draw ``image`` ``(H, W)`` in [0, 1] (white on black) titled ``title`` to a new PNG file ``path`` (its
    folders created) and return ``path``; never replaces a file (:func:`mlpjax.files.write_new`)."""
    from mlpjax import files, plots

    return files.write_new(path, lambda tmp: plots.image_grid(np.asarray(image)[None], tmp, titles=[title]))
