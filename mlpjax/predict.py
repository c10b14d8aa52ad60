"""Predict with a trained model: a test sample drawn to a PNG, or a digit image file of any size.

Image files go through :func:`mlpjax.preprocess.canvas_to_mnist` (grey levels, inverted to white-on-black
where the background is light, cropped, scaled and centred like MNIST) and are then resized to the model's
input side ``sqrt(input_dim)`` when that is not 28. No randomness.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from mlpjax import model
from mlpjax.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The predicted class of one input, its probability, all ``(num_classes,)`` probabilities, the true label."""

    label: int
    probability: float
    probabilities: np.ndarray
    true_label: int | None = None

    def describe(self, sep: str = ", ") -> str:
        text = f"predicted {self.label} (p={self.probability:.3f})"
        return text if self.true_label is None else f"{text}{sep}true {self.true_label}"


def predict_one(classifier: model.Classifier, x, true_label: int | None = None) -> Prediction:
    """Predict one flattened input ``x`` ``(input_dim,)``."""
    probs = np.asarray(classifier.predict_proba(np.asarray(x, np.float32).reshape(-1)))
    label = int(probs.argmax())
    return Prediction(label, float(probs[label]), probs, None if true_label is None else int(true_label))


def input_side(input_dim: int) -> int:
    """The side of a square image of ``input_dim`` pixels; a UserInputError if the model's input is not square."""
    side = math.isqrt(input_dim)
    if side * side != input_dim:
        raise UserInputError(f"the model takes {input_dim} features, not a square image: --image needs an "
                             "image model (e.g. trained on mnist or digits)")
    return side


def load_image(path: str | os.PathLike, input_dim: int) -> np.ndarray:
    """A digit image file (PNG, JPEG, ...; any size, either polarity) as the model's input ``(input_dim,)``."""
    from PIL import Image, UnidentifiedImageError

    from mlpjax import preprocess

    path = Path(path)
    side = input_side(input_dim)
    try:
        with Image.open(path) as image:
            image.load()
            digit = preprocess.canvas_to_mnist(image)
    except FileNotFoundError:
        raise UserInputError(f"--image {path}: file not found") from None
    except IsADirectoryError:
        raise UserInputError(f"--image {path}: is a directory, expected an image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise UserInputError(f"--image {path}: not a readable image ({e}); expected a PNG, JPEG or similar") from None
    except UserInputError as e:
        raise UserInputError(f"--image {path}: {e}") from None
    if side != digit.shape[0]:
        digit = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BOX), np.float32)
        digit = np.clip(digit, 0.0, 1.0)
    return digit.reshape(-1)


def save_png(image: np.ndarray, title: str, path: str | os.PathLike) -> Path:
    """Draw ``image`` ``(H, W)`` in [0, 1] (white on black) titled ``title`` to the PNG ``path``."""
    from mlpjax import plots

    try:
        return plots.image_grid(np.asarray(image)[None], path, titles=[title])
    except OSError as e:
        raise UserInputError(f"--out {path}: cannot write ({e})") from None
