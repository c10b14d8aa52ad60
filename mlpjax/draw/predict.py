"""Predict with a trained model: a test sample drawn to a PNG, or a digit image file of any size.

Image files go through :func:`mlpjax.draw.preprocess.canvas_to_mnist` (grey levels, inverted to white-on-black
where the background is light, cropped, scaled and centred like MNIST) and are then resized to the model's
input side ``sqrt(input_dim)`` when that is not 28. No randomness.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlpjax.core import model
from mlpjax.errors import UserInputError

if TYPE_CHECKING:
    import PIL.Image


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


def load_image(path: str | os.PathLike, input_dim: int) -> np.ndarray:
    """A digit image file (PNG, JPEG, ...; any size, either polarity) as the model's input ``(input_dim,)``.

    The file is read by :func:`mlpjax.data.images.read_grey` (as an image folder's images are: a regular file of at
    most 100 megapixels that fit in memory, any mode made grey); every bad file (missing, not a regular file, not
    an image, truncated, too large, an unconvertible mode, no ink) raises UserInputError naming it.
    """
    from PIL import Image

    from mlpjax.data.images import read_grey
    from mlpjax.draw import preprocess

    path = Path(path)
    side = input_side(input_dim)
    try:
        digit = preprocess.canvas_to_mnist(read_grey(path))
    except UserInputError as e:
        raise UserInputError(str(e) if str(e).startswith(f"{path}:") else f"{path}: {e}") from None
    if side != digit.shape[0]:
        digit = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BOX), np.float32)
        digit = np.clip(digit, 0.0, 1.0)
    return digit.reshape(-1)


def load_image_as_read(path: str | os.PathLike, image_shape: tuple[int, int]) -> np.ndarray:
    """An image file as a model trained on an image folder (or a ``tfds:`` set) takes it: ``(H * W,)`` float32,
    read exactly as that data's images were (:func:`mlpjax.data.images.read_grey`, resized to ``image_shape``
    ``(H, W)`` by :func:`~mlpjax.data.images.levels`, the 8-bit levels' values); no inversion, cropping or
    centring. Every bad file raises UserInputError naming it."""
    from mlpjax import data
    from mlpjax.data.images import levels, read_grey

    return data.features(levels(read_grey(path), (int(image_shape[0]), int(image_shape[1]))), 255)


def picture(image: np.ndarray, title: str, scale: int = 0) -> PIL.Image.Image:
    """``image`` ``(H, W)`` in [0, 1] as white on black, each pixel a ``scale`` x ``scale`` block (0: about 160
    pixels a side), under ``title``'s lines in black on white: an RGB :class:`PIL.Image.Image`. Pillow only (no
    matplotlib: ``predict`` starts faster)."""
    from PIL import Image, ImageDraw, ImageFont

    image = np.clip(np.nan_to_num(np.asarray(image, np.float64)), 0.0, 1.0)
    h, w = image.shape
    scale = scale or max(1, 160 // max(h, w))
    grey = Image.fromarray(np.round(image * 255).astype(np.uint8)).resize(
        (w * scale, h * scale), Image.Resampling.NEAREST
    )
    font = ImageFont.load_default(size=14)
    lines = title.splitlines() or [""]
    line_h = 18
    widths = [int(font.getlength(line)) for line in lines]
    margin = 8
    width = max([grey.width, *widths]) + 2 * margin
    out = Image.new("RGB", (width, grey.height + line_h * len(lines) + 3 * margin), "white")
    pen = ImageDraw.Draw(out)
    for i, (line, lw) in enumerate(zip(lines, widths, strict=True)):
        pen.text(((width - lw) // 2, margin + i * line_h), line, fill="black", font=font)
    out.paste(grey.convert("RGB"), ((width - grey.width) // 2, 2 * margin + line_h * len(lines)))
    return out


def save_png(image: np.ndarray, title: str, path: str | os.PathLike) -> Path:
    """Draw ``image`` ``(H, W)`` in [0, 1] (white on black) titled ``title`` (lines split at newlines) to a new PNG
    file ``path`` (its folders created) and return ``path``; never replaces a file (:func:`mlpjax.files.write_new`)."""
    from mlpjax import files

    drawn = picture(image, title)
    return files.write_new(path, lambda tmp: drawn.save(tmp, format="PNG"))
