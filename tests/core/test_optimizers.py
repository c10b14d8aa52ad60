"""The optimizer registry: every entry's contract, and Keras' Adam and Nadam rules written out in numpy.
The step-by-step comparison with Keras itself is tests/core/test_keras_parity.py."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlpjax.core import optimizers
from mlpjax.errors import UserInputError

GRADS = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32) * np.array([1.0, 1e-3, 1e-6], dtype=np.float32)


def stacked_updates(tx, grads=GRADS):
    """The updates ``tx`` makes from params of ones for each gradient of ``grads`` in turn (traceable)."""
    params = jnp.ones(grads.shape[1:], jnp.float32)
    state, out = tx.init(params), []
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, u)
        out.append(u)
    return jnp.stack(out)


def updates(tx, grads=GRADS):
    return np.asarray(stacked_updates(tx, grads))


def one_update(name, grad=0.5, lr=None):
    return float(updates(optimizers.get_optimizer(name, lr), np.float32([[grad]]))[0, 0])


def keras_adam_reference(grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras 3's Adam.update_step in float64: alpha = lr·sqrt(1−b2^t)/(1−b1^t); step −alpha·m/(sqrt(v)+eps)."""
    m = v = np.zeros(grads.shape[1:])
    out = []
    for t, g in enumerate(grads.astype(np.float64), 1):
        m, v = m + (g - m) * (1 - b1), v + (g * g - v) * (1 - b2)
        out.append(-(lr * np.sqrt(1 - b2**t) / (1 - b1**t)) * m / (np.sqrt(v) + eps))
    return np.array(out)


def keras_nadam_reference(grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras 3's Nadam.update_step in float64, with its momentum schedule u_t = b1(1 − 0.5·0.96^t)."""
    m = v = np.zeros(grads.shape[1:])
    product, out = 1.0, []
    for t, g in enumerate(grads.astype(np.float64), 1):
        u_t, u_next = b1 * (1 - 0.5 * 0.96**t), b1 * (1 - 0.5 * 0.96 ** (t + 1))
        product *= u_t
        m, v = m + (g - m) * (1 - b1), v + (g * g - v) * (1 - b2)
        m_hat = u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)
        out.append(-lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps))
    return np.array(out)


def test_sgd_is_plain_gradient_descent_at_keras_lr():
    assert one_update("sgd") == pytest.approx(-0.01 * 0.5)
    assert one_update("sgd", lr=0.1) == pytest.approx(-0.1 * 0.5)


@pytest.mark.parametrize("name, reference", [("adam", keras_adam_reference), ("nadam", keras_nadam_reference)])
def test_adam_and_nadam_follow_keras_rules(name, reference):
    np.testing.assert_allclose(updates(optimizers.get_optimizer(name)), reference(GRADS), rtol=2e-5, atol=1e-12)


def test_adam_adds_epsilon_before_the_bias_correction():
    # First step, m = 0.1 g, v = 0.001 g²: Keras -lr·sqrt(.001)·g/(sqrt(.001)|g| + eps); optax -lr·g/(|g| + eps).
    # For g = 1e-7 the two differ by a factor of about 30.
    g, c = 1e-7, np.sqrt(0.001)
    assert one_update("adam", grad=g) == pytest.approx(-1e-3 * c * g / (c * g + 1e-7), rel=1e-4)
    assert one_update("optax_adam", grad=g) == pytest.approx(-1e-3 * g / (g + 1e-7), rel=1e-4)


def test_nadam_is_not_optax_nadam():
    # Keras' momentum schedule makes the first update smaller than optax.nadam's constant beta_1 (by 1.39x).
    ratio = one_update("optax_nadam") / one_update("nadam")
    assert 1.3 < ratio < 1.5


@pytest.mark.parametrize("name, build", [("optax_adam", optax.adam), ("optax_nadam", optax.nadam)])
def test_optax_variants_are_optax_at_keras_defaults(name, build):
    np.testing.assert_array_equal(updates(optimizers.get_optimizer(name)), updates(build(1e-3, eps=1e-7)))


def test_adagrad_starts_from_keras_accumulator():
    # accumulator 0.1 + g^2, step -lr * g / sqrt(acc + ...)
    assert one_update("adagrad") == pytest.approx(-1e-3 * 0.5 / np.sqrt(0.1 + 0.25), rel=1e-4)


def test_rmsprop_uses_rho_09():
    assert one_update("rmsprop") == pytest.approx(-1e-3 * 0.5 / np.sqrt(0.1 * 0.25 + 1e-7), rel=1e-4)


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_optimizer_builds_descends_and_takes_its_default_lr(name):
    tx = optimizers.get_optimizer(name)
    assert isinstance(tx, optax.GradientTransformation)
    assert one_update(name) < 0
    assert optimizers.get_optimizer(name) is tx
    default = optimizers.default_learning_rate(name)
    np.testing.assert_array_equal(updates(tx), updates(optimizers.get_optimizer(name, default)))


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_every_optimizer_takes_its_lr_as_float_array_schedule_or_injected(name):
    # As optax's aliases: a float, a traced array, a schedule of the step, or a hyperparameter in the state.
    build, lr = optimizers.OPTIMIZERS[name][1], 0.02
    plain = updates(build(lr))
    np.testing.assert_allclose(updates(build(jnp.float32(lr))), plain, rtol=1e-6)
    np.testing.assert_allclose(updates(build(optax.constant_schedule(lr))), plain, rtol=1e-6)
    np.testing.assert_allclose(updates(optax.inject_hyperparams(build)(lr)), plain, rtol=1e-6)
    traced = jax.jit(lambda r: stacked_updates(build(r)))(jnp.float32(lr))
    np.testing.assert_allclose(traced, plain, rtol=1e-6)
    halved = updates(build(lambda step: jnp.where(step >= 2, lr / 2, lr)))
    np.testing.assert_allclose(halved[:2], plain[:2], rtol=1e-6)
    assert np.all(np.abs(halved[2:]) < np.abs(plain[2:]))  # the schedule is read at every step


def test_default_learning_rates_are_keras():
    assert optimizers.default_learning_rate("sgd") == 0.01
    assert {optimizers.default_learning_rate(n) for n in optimizers.OPTIMIZERS if n != "sgd"} == {1e-3}


def test_unknown_optimizer_and_bad_lr():
    with pytest.raises(UserInputError, match="unknown optimizer 'no_such_optimizer'; valid: sgd, adam"):
        optimizers.get_optimizer("no_such_optimizer")
    with pytest.raises(UserInputError, match="^lr must be a positive number"):
        optimizers.get_optimizer("adam", -1.0)
