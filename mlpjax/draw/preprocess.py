"""Turn a drawing into what the MLP was trained on: a 28x28 MNIST-style image, white digit on black.

MNIST digits were size-normalised to fit a 20x20 box (aspect ratio kept, anti-aliased) and then placed in a
28x28 field so that their centre of mass sits at pixel (14, 14) (rows, columns, 0-based; the mean over the
MNIST test set is (13.99, 14.01)). :func:`canvas_to_mnist` does the same to a drawing of any size;
:func:`naive_resize` is the tutorial's way (squash the whole canvas to 28x28), kept for comparison.

Inputs are a PIL image (any mode) or an array ``(H, W)`` / ``(H, W, C)`` (integers in [0, 255], bool, or
floats in [0, 1]; floats above 1 are taken as 0-255); black ink on white or white ink on black, detected from
the border (see :func:`ink`). No randomness.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mlpjax.errors import UserInputError

MNIST_SIZE = 28  # side of the field, pixels
MNIST_BOX = 20  # the digit is scaled to fit a MNIST_BOX x MNIST_BOX box
MNIST_CENTRE = (14.0, 14.0)  # (row, col) where the centre of mass goes
INK_THRESHOLD = 0.1  # ink above this (in [0, 1], background 0) counts for the bounding box and emptiness


class EmptyCanvasError(UserInputError):
    """The image holds no ink: nothing to recognise."""


def to_gray(image) -> np.ndarray:
    """A PIL image or array as float32 ``(H, W)`` grey levels in [0, 1] (colour averaged, alpha composited on white)."""
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        if image.mode == "F":
            gray = np.asarray(image, np.float32)
        else:
            gray = np.asarray(image.convert("L"), np.float32) / 255.0
    else:
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
            arr = arr[..., :3].mean(-1) if arr.shape[-1] != 1 else arr[..., 0]
        if arr.ndim != 2:
            raise UserInputError(f"expected a 2-D grey image (H, W) or (H, W, channels), got shape {arr.shape}")
        if arr.dtype == bool:
            gray = arr.astype(np.float32)
        elif np.issubdtype(arr.dtype, np.integer):
            gray = arr.astype(np.float32) / 255.0
        else:
            gray = arr.astype(np.float32)
            if gray.size and np.nanmax(gray) > 1.0:  # floats on the 0-255 scale
                gray = gray / 255.0
    if gray.size == 0:
        raise EmptyCanvasError(f"the image is empty (shape {gray.shape}): draw a digit first")
    if not np.isfinite(gray).all():
        raise UserInputError("the image contains NaN or infinite values")
    return np.clip(gray, 0.0, 1.0)


def ink(image) -> np.ndarray:
    """Ink intensity float32 ``(H, W)`` in [0, 1]: 1 is full ink, 0 the background.

    Polarity is detected from the median of the border pixels: a light border means black ink on white
    (a canvas or a scan), which is inverted; a dark one means the image is already white on black (MNIST).
    The background level is then subtracted and the rest stretched back to [0, 1], so grey paper reads as 0.
    """
    gray = to_gray(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        gray, background = 1.0 - gray, 1.0 - background
    return np.clip((gray - background) / (1.0 - background), 0.0, 1.0).astype(np.float32)


def _resize(a: np.ndarray, width: int, height: int, resample=Image.Resampling.BICUBIC, clip: bool = True) -> np.ndarray:
    """Resize a float image with PIL (anti-aliased when shrinking); clipped back to [0, 1] unless ``clip=False``."""
    out = np.array(Image.fromarray(np.ascontiguousarray(a, np.float32)).resize((width, height), resample), np.float32)
    return np.clip(out, 0.0, 1.0) if clip else out


def naive_resize(image) -> np.ndarray:
    """The tutorial's preprocessing: the whole image squashed to ``(28, 28)``, float32 in [0, 1], white on black.

    No cropping, no size normalisation, no centring; the aspect ratio is lost for non-square inputs.
    (Polarity is normalised like :func:`canvas_to_mnist`, so the comparison isolates the geometry.)
    """
    return _resize(ink(image), MNIST_SIZE, MNIST_SIZE)


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """``(row, col)`` intensity-weighted centre of a 2-D array with a positive sum."""
    total = float(a.sum())
    rows, cols = np.indices(a.shape)
    return float((rows * a).sum() / total), float((cols * a).sum() / total)


def canvas_to_mnist(image) -> np.ndarray:
    """MNIST-style ``(28, 28)`` float32 in [0, 1], white digit on black, from a drawing of any size.

    Crops to the ink's bounding box, scales it to fit 20x20 keeping the aspect ratio (anti-aliased; the
    longer side becomes 20 px, the shorter at least 1 px), stretches the grey levels so the darkest ink is 1
    (before scaling, and again after it if shrinking left thin strokes fainter than 1), and pastes it into
    the 28x28 field with its centre of mass at :data:`MNIST_CENTRE` (shifted by whole pixels, kept inside the
    field). Raises :class:`EmptyCanvasError` when no pixel has ink above :data:`INK_THRESHOLD`.
    """
    a = ink(image)
    mask = a > INK_THRESHOLD
    if not mask.any():
        raise EmptyCanvasError("the canvas is empty: draw a digit first")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    a = a / a.max()  # the darkest ink becomes 1 (grey pencil reads like black)
    h, w = a.shape
    scale = MNIST_BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    # Lanczos keeps thin strokes crisp when shrinking; bilinear avoids ringing when enlarging tiny drawings.
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
    digit = _resize(a, new_w, new_h, resample, clip=False)
    peak = float(digit.max())
    if 0.0 < peak < 1.0:  # strokes thinner than a pixel after shrinking come out faint: back to full ink
        digit /= peak
    digit = np.clip(digit, 0.0, 1.0)
    cy, cx = centre_of_mass(digit)
    top = int(np.clip(round(MNIST_CENTRE[0] - cy), 0, MNIST_SIZE - new_h))
    left = int(np.clip(round(MNIST_CENTRE[1] - cx), 0, MNIST_SIZE - new_w))
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    out[top : top + new_h, left : left + new_w] = digit
    return out
