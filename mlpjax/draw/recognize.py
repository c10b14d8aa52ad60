"""Recognising a drawn digit, whatever draws it (the Tk window, a script, a test): one preprocessing
(:func:`mlpjax.draw.preprocess.canvas_to_mnist`) and one model call; the model checks; demo strokes; and a
quick model to draw on without a saved run. No randomness (but :func:`train_quick_model`'s seed 0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from mlpjax.core.model import Classifier
from mlpjax.draw import preprocess
from mlpjax.errors import UserInputError

CANVAS_SIZE = 280  # pixels, as in the tutorial


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int) -> list[tuple[int, int]]:
    """``n`` points along an ellipse arc from angle ``a0`` to ``a1`` (degrees, clockwise on screen from 3 o'clock)."""
    angles = np.radians(np.linspace(a0, a1, n))
    return [(round(cx + rx * np.cos(a)), round(cy + ry * np.sin(a))) for a in angles]


# Mouse strokes of each digit on the 280x280 canvas, as a person might draw them: for demos, scripts and tests.
DEMO_STROKES: dict[int, list[list[tuple[int, int]]]] = {
    0: [_arc(140, 140, 60, 95, 0, 360, 40)],
    1: [[(150, 40), (130, 240)]],
    2: [_arc(140, 95, 55, 50, 200, 380, 20) + [(90, 235), (200, 235)]],
    3: [_arc(135, 90, 55, 45, 210, 450, 20)[:-1] + _arc(135, 185, 60, 50, 270, 510, 20)],
    4: [[(160, 40), (70, 170), (210, 170)], [(170, 100), (170, 240)]],
    5: [[(190, 45), (100, 45), (95, 125)] + _arc(135, 170, 60, 55, 230, 490, 25)],
    6: [[(180, 45)] + _arc(130, 180, 55, 55, 190, 540, 30)],
    7: [[(80, 50), (200, 50), (120, 240)]],
    8: [_arc(140, 90, 45, 45, 90, 450, 30), _arc(140, 185, 55, 50, -90, 270, 30)],
    9: [_arc(140, 90, 50, 45, 0, 360, 30) + [(190, 90), (185, 240)]],
}


@dataclasses.dataclass(frozen=True)
class Recognition:
    """One recognised drawing: the predicted class, all class probabilities ``(C,)`` and the ``(28, 28)`` input."""

    digit: int
    probabilities: np.ndarray
    image: np.ndarray

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.digit])

    @property
    def text(self) -> str:
        return f"{self.digit} ({self.confidence:.0%})"


def recognise_image(classifier: Classifier, image) -> Recognition:
    """Preprocess a drawing MNIST-style and classify it; raises :class:`preprocess.EmptyCanvasError` if blank."""
    x = preprocess.canvas_to_mnist(image)
    probs = np.asarray(classifier.predict_proba(x.reshape(-1)), np.float32)
    return Recognition(digit=int(np.argmax(probs)), probabilities=probs, image=x)


def check_model(classifier: Classifier) -> None:
    """The window feeds 28x28 images: the model must take 784 inputs."""
    side = preprocess.MNIST_SIZE
    if classifier.model_config.input_dim != side * side:
        raise UserInputError(
            f"the model takes {classifier.model_config.input_dim} inputs, but the draw window feeds "
            f"{side}x{side} = {side * side}-pixel images; use a model trained on mnist"
        )


def train_quick_model(
    data_dir: str | None = None, log: Callable[[str], None] | None = print, *, dataset=None
) -> Classifier:
    """A 1-epoch tutorial MLP on MNIST (seed 0), for trying the window without a saved model (a few seconds).

    ``dataset``: MNIST already loaded (else loaded from ``data_dir``)."""
    from mlpjax.core.config import TrainConfig
    from mlpjax.training import train

    if log:
        log("training a quick model: 1 epoch of MNIST ...")
    result = train.fit(TrainConfig(dataset="mnist", data_dir=data_dir, epochs=1, seed=0), dataset)
    if log:
        log(
            f"trained a quick model: 1 epoch of MNIST, test accuracy {result.test_metrics['accuracy']:.4f} "
            "(to keep a model: mlpjax train --output DIR, then mlpjax draw DIR)"
        )
    return Classifier(result.state.params, result.state.model_config)
