"""What the network sees of a drawing, whatever shows it (the web page, the Tk window, a notebook): the first hidden
layer's activations, the saliency map and the input weights of the most active hidden units.

The saliency map is the gradient of the predicted class's logit with respect to the 784 input pixels,
``jax.grad`` of the model's own forward pass (:func:`mlpjax.core.model.apply`, inference mode), computed together
with the activations by one function jitted once per architecture. Recognition itself (the preprocessing and the
probabilities) is :func:`mlpjax.draw.recognize.recognise_image`'s, so every front end shows the same prediction.
No randomness.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax.core import model
from mlpjax.core.model import Classifier
from mlpjax.draw import preprocess
from mlpjax.draw.recognize import Recognition, recognise_image

TOP_UNITS = 8  # first-layer weights shown: those of this many most active hidden units


@dataclasses.dataclass(frozen=True)
class Insight:
    """One drawing seen by the network.

    ``recognition``: the prediction (:class:`~mlpjax.draw.recognize.Recognition`, its ``image`` ``(28, 28)``);
    ``activations``: the first hidden layer after its activation function ``(H,)`` (``(0,)`` without hidden layers);
    ``saliency``: d logit[predicted class] / d input pixel ``(28, 28)``, signed;
    ``top_units``: indices of the most active hidden units ``(k,)``, most active first;
    ``top_weights``: their input weights ``(k, 28, 28)`` (the first layer's kernel columns).
    """

    recognition: Recognition
    activations: np.ndarray
    saliency: np.ndarray
    top_units: np.ndarray
    top_weights: np.ndarray


def _first_hidden(params, x: jax.Array, model_config: model.ModelConfig) -> jax.Array:
    """The first hidden layer's activations ``(H,)`` for one input ``x`` ``(input_dim,)``, as :class:`MLP` computes."""
    return model.hidden_outputs(params, x[None], model_config=model_config)[0][0]


@functools.partial(jax.jit, static_argnames=("model_config",))
def _saliency_and_activations(params, x: jax.Array, *, model_config: model.ModelConfig):
    """``(saliency (input_dim,), activations (H,))`` for one input ``x`` ``(input_dim,)``; the class is the argmax."""

    def logits(v):
        return model.apply(params, v[None], model_config=model_config)[0]

    predicted = jnp.argmax(logits(x))
    saliency = jax.grad(lambda v: logits(v)[predicted])(x)
    activations = _first_hidden(params, x, model_config) if model_config.hidden else jnp.zeros((0,), jnp.float32)
    return saliency, activations


def inspect(classifier: Classifier, image, top: int = TOP_UNITS) -> Insight:
    """Recognise ``image`` (anything :func:`mlpjax.draw.preprocess.canvas_to_mnist` reads; the model must take
    28x28 = 784 inputs) and look inside the network; raises :class:`preprocess.EmptyCanvasError` if blank."""
    recognition = recognise_image(classifier, image)
    return inspect_recognition(classifier, recognition, top)


def inspect_recognition(classifier: Classifier, recognition: Recognition, top: int = TOP_UNITS) -> Insight:
    """:func:`inspect` for a drawing already recognised (its ``image`` is the model's input)."""
    config = classifier.model_config
    side = preprocess.MNIST_SIZE
    x, scaler = recognition.image.reshape(-1).astype(np.float32), classifier.scaler
    if scaler is not None:  # a model trained with normalize sees the scaled pixels
        x = scaler.apply(x)
    saliency, activations = _saliency_and_activations(classifier.params, jnp.asarray(x), model_config=config)
    if scaler is not None:  # d logit / d pixel through (pixel - shift) / scale
        saliency = np.asarray(saliency, np.float32) / scaler.scale
    activations = np.asarray(activations, np.float32)
    units = np.argsort(-activations, kind="stable")[: max(0, top)]
    if config.hidden:
        kernel = np.asarray(classifier.params[config.layer_names()[0]]["kernel"], np.float32)
        weights = kernel[:, units].T.reshape(-1, side, side)
    else:
        weights = np.zeros((0, side, side), np.float32)
    return Insight(
        recognition=recognition,
        activations=activations,
        saliency=np.asarray(saliency, np.float32).reshape(side, side),
        top_units=units.astype(np.int64),
        top_weights=weights,
    )


def warm_up(classifier: Classifier) -> None:
    """Compile the model call and the saliency function now (a blank 28x28 input), not at the first stroke."""
    side = preprocess.MNIST_SIZE
    blank = np.zeros(side * side, np.float32)
    classifier.predict_proba(blank)
    jax.block_until_ready(
        _saliency_and_activations(classifier.params, jnp.asarray(blank), model_config=classifier.model_config)
    )
