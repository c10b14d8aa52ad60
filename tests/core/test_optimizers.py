import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlpjax.core import optimizers
from mlpjax.errors import UserInputError


def one_update(name, grad=0.5, lr=None):
    tx = optimizers.get_optimizer(name, lr)
    params = {"w": jnp.array([1.0])}
    grads = {"w": jnp.array([grad])}
    updates, _ = tx.update(grads, tx.init(params), params)
    return float(updates["w"][0])


def test_sgd_is_plain_gradient_descent_at_keras_lr():
    assert one_update("sgd") == pytest.approx(-0.01 * 0.5)
    assert one_update("sgd", lr=0.1) == pytest.approx(-0.1 * 0.5)


def test_adam_first_step_uses_keras_epsilon():
    # Bias-corrected first step: -lr * g / (|g| + eps): eps 1e-7 makes a measurable difference for tiny g.
    g = 1e-7
    assert one_update("adam", grad=g) == pytest.approx(-1e-3 * g / (g + 1e-7), rel=1e-4)


def test_adagrad_starts_from_keras_accumulator():
    # accumulator 0.1 + g^2, step -lr * g / sqrt(acc + ...)
    assert one_update("adagrad") == pytest.approx(-1e-3 * 0.5 / np.sqrt(0.1 + 0.25), rel=1e-4)


def test_rmsprop_uses_rho_09():
    assert one_update("rmsprop") == pytest.approx(-1e-3 * 0.5 / np.sqrt(0.1 * 0.25 + 1e-7), rel=1e-4)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_keras_name_builds_and_descends(name):
    assert isinstance(optimizers.get_optimizer(name), optax.GradientTransformation)
    assert one_update(name) < 0


def test_default_learning_rates_are_keras():
    assert optimizers.default_learning_rate("sgd") == 0.01
    assert {optimizers.default_learning_rate(n) for n in optimizers.OPTIMIZERS if n != "sgd"} == {1e-3}


def test_unknown_optimizer_and_bad_lr():
    with pytest.raises(UserInputError, match="unknown optimizer 'adamw'; valid: sgd, adam"):
        optimizers.get_optimizer("adamw")
    with pytest.raises(UserInputError, match="^lr must be a positive number"):
        optimizers.get_optimizer("adam", -1.0)
