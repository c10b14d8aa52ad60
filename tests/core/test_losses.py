import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax.core import losses, model
from mlpjax.errors import UserInputError

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-1.0, 4.0, 0.0]], np.float32)
TARGETS = np.eye(3, dtype=np.float32)[[0, 2, 0]]


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference(name, logits, targets):
    """The Keras formulas, on softmax probabilities (Keras clips them to [1e-7, 1 - 1e-7] for logs)."""
    p = softmax(logits.astype(np.float64))
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    if name == "categorical_crossentropy":
        return -(targets * np.log(pc)).sum(-1)
    if name == "mse":
        return ((p - targets) ** 2).mean(-1)
    if name == "binary_crossentropy":
        return -(targets * np.log(pc) + (1 - targets) * np.log(1 - pc)).mean(-1)
    if name == "hinge":
        return np.maximum(0, 1 - (2 * targets - 1) * p).mean(-1)
    if name == "huber_loss":
        d = np.abs(p - targets)
        return np.where(d <= 1, 0.5 * d**2, d - 0.5).mean(-1)
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(losses.LOSSES))
def test_each_loss_matches_the_keras_formula(name):
    np.testing.assert_allclose(
        losses.get_loss(name)(LOGITS, TARGETS), reference(name, LOGITS, TARGETS), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "alias, name",
    [
        ("mean_squared_error", "mse"),
        ("MSE", "mse"),
        ("MeanSquaredError", "mse"),
        ("bce", "binary_crossentropy"),
        ("BCE", "binary_crossentropy"),
        ("huber", "huber_loss"),
        ("Huber", "huber_loss"),
        ("Hinge", "hinge"),
        ("CategoricalCrossentropy", "categorical_crossentropy"),
    ],
)
def test_keras_aliases_resolve_to_one_name_recorded_canonically(alias, name):
    from mlpjax.core.config import TrainConfig

    assert losses.canonical(alias) == name and losses.get_loss(alias) is losses.get_loss(name)
    assert TrainConfig(loss=alias).loss == name and TrainConfig(loss=alias).to_dict()["loss"] == name


def test_every_alias_names_a_loss():
    assert set(losses.ALIASES.values()) <= set(losses.LOSSES) and not set(losses.ALIASES) & set(losses.LOSSES)


def test_saturated_categorical_crossentropy_is_taken_from_the_logits():
    # True class at p = e^-30: from the logits the loss is 30 (Keras on TensorFlow); clipping the probability to
    # 1e-7, as Keras on JAX does, would cap it at -log(1e-7) = 16.1 and give no gradient.
    logits, targets = np.float32([[0.0, 30.0]]), np.float32([[1.0, 0.0]])
    assert float(losses.get_loss("categorical_crossentropy")(logits, targets)[0]) == pytest.approx(30.0, rel=1e-6)
    grad = jax.grad(lambda z: losses.get_loss("categorical_crossentropy")(z, targets)[0])(jnp.asarray(logits))
    np.testing.assert_allclose(grad, [[-1.0, 1.0]], atol=1e-6)


def test_binary_crossentropy_is_taken_from_the_clipped_probabilities():
    # Keras on JAX: the softmax's probabilities clipped to [1e-7, 1 - 1e-7] (not the logits through a sigmoid).
    logits, targets = np.float32([[0.0, 30.0]]), np.float32([[1.0, 0.0]])
    expected = -(np.log(1e-7) + np.log(1.0 - np.float64(np.float32(1 - 1e-7)))) / 2
    assert float(losses.get_loss("bce")(logits, targets)[0]) == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(UserInputError, match="unknown loss 'cross_entropy'; valid: categorical_crossentropy"):
        losses.get_loss("cross_entropy")


def test_padding_of_weight_zero_does_not_change_the_loss_or_its_gradient():
    config = model.ModelConfig(input_dim=4, hidden=(6,), dropout=0.0, num_classes=3)
    params = model.init(jax.random.PRNGKey(0), config)
    x = jax.random.uniform(jax.random.PRNGKey(1), (5, 4))
    y = jnp.array([0, 1, 2, 1, 0])
    plain = {"image": x, "label": y}
    padded = {
        "image": jnp.concatenate([x, jnp.ones((3, 4))]),
        "label": jnp.concatenate([y, jnp.array([2, 2, 2])]),
        "weight": jnp.array([1.0] * 5 + [0.0] * 3),
    }
    f = lambda p, b: losses.loss(p, b, None, model_config=config, train=False)  # noqa: E731
    (v1, aux1), g1 = jax.value_and_grad(f, has_aux=True)(params, plain)
    (v2, aux2), g2 = jax.value_and_grad(f, has_aux=True)(params, padded)
    np.testing.assert_allclose(v1, v2, rtol=1e-6)
    np.testing.assert_allclose(aux1["accuracy"], aux2["accuracy"])
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), g1, g2)


def test_loss_is_the_batch_mean_of_the_per_example_loss():
    config = model.ModelConfig(input_dim=4, hidden=(6,), dropout=0.0, num_classes=3)
    params = model.init(jax.random.PRNGKey(0), config)
    batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (5, 4)), "label": jnp.array([0, 1, 2, 1, 0])}
    value, aux = losses.loss(params, batch, None, model_config=config, loss_name="mse", train=False)
    logits = model.apply(params, batch["image"], model_config=config)
    np.testing.assert_allclose(aux["logits"], logits)
    np.testing.assert_allclose(
        value, reference("mse", np.asarray(logits), np.eye(3)[[0, 1, 2, 1, 0]]).mean(), rtol=1e-5
    )
