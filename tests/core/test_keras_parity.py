"""mlpjax against Keras 3 itself (on its JAX backend): every optimizer and loss by name trains a 64-16-10 MLP on
scikit-learn's digits from the same initial weights on the same batches in the same order (dropout off, float32),
and the per-step losses and final weights agree to 1e-5 relative; the metrics by name agree to 1e-6.

Skipped where keras is not installed (it is in the ``dev`` extra). Where TensorFlow is installed too (the ``bench``
extra), the same file also runs against Keras on TensorFlow, in a child process (one process holds one backend):
:func:`test_the_same_holds_against_keras_on_tensorflow`."""

import os
import subprocess
import sys
from importlib.util import find_spec

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras", reason="keras is not installed (pip install keras, or the dev extra)")
BACKEND = keras.backend.backend()
if BACKEND not in ("jax", "tensorflow"):
    pytest.skip(f"keras runs on {BACKEND}, not on JAX or TensorFlow (set KERAS_BACKEND=jax)", allow_module_level=True)

from sklearn.datasets import load_digits  # noqa: E402

from mlpjax.core import losses, metrics, model, optimizers  # noqa: E402
from mlpjax.core.config import TrainConfig  # noqa: E402
from mlpjax.core.state import create_train_state  # noqa: E402
from mlpjax.training import steps  # noqa: E402

STEPS, BATCH, HIDDEN = 120, 16, 16
RTOL = 1e-5
# Each optimizer of the registry by Keras' name; the optax_ variants are optax's rules, not Keras'.
KERAS_OPTIMIZERS = [n for n in optimizers.OPTIMIZERS if not n.startswith("optax_")]
# mlpjax's loss name -> Keras 3's (huber_loss is the tutorial's name of Keras' huber).
KERAS_LOSSES = {
    "categorical_crossentropy": "categorical_crossentropy",
    "mse": "mean_squared_error",
    "binary_crossentropy": "binary_crossentropy",
    "hinge": "hinge",
    "huber_loss": "huber",
}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1500], order[1500:]
    batches = np.random.default_rng(1).choice(train, (STEPS, BATCH))
    return x, y.astype(np.int32), batches, test


def both_trained(name, loss_name, digits, keras_name=None):
    """Train mlpjax (optimizer ``name``) and Keras (``keras_name``, default ``name``) step by step on the same
    batches; their per-step losses and final weights."""
    x, y, batches, _ = digits
    config = TrainConfig(
        dataset="digits", optimizer=name, loss=loss_name, model=model.ModelConfig(hidden=(HIDDEN,), dropout=0.0)
    )
    state = create_train_state(jax.random.PRNGKey(0), config, config.model_config(64, 10))
    keras_model = keras_mlp(state.params)
    keras_model.compile(
        optimizer=keras.optimizers.get(keras_name or name), loss=KERAS_LOSSES[losses.canonical(loss_name)]
    )
    ours, theirs = [], []
    for idx in batches:
        state, m = steps.train_step(state, {"image": jnp.asarray(x[idx]), "label": jnp.asarray(y[idx])})
        ours.append(float(m["loss"]))
        theirs.append(float(keras_model.train_on_batch(x[idx], np.eye(10, dtype=np.float32)[y[idx]])))
    return np.array(ours), np.array(theirs), flat_weights(state.params), keras_model.get_weights()


def keras_mlp(params):
    m = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    m.set_weights(flat_weights(params))
    return m


def flat_weights(params):
    return [np.asarray(params[layer][k]) for layer in ("hidden_0", "output") for k in ("kernel", "bias")]


def assert_same_training(ours, theirs, our_weights, their_weights):
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg="per-step training losses")
    scale = max(np.abs(b).max() for b in their_weights)  # the model's weight scale (biases start at 0)
    for a, b in zip(our_weights, their_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg="final weights")
    assert np.abs(their_weights[0] - our_weights[0]).max() < np.abs(their_weights[0]).max()  # they moved


@pytest.mark.parametrize("name", KERAS_OPTIMIZERS)
def test_every_optimizer_trains_as_keras_does(name, digits):
    assert keras.optimizers.get(name).learning_rate.numpy() == pytest.approx(optimizers.default_learning_rate(name))
    assert_same_training(*both_trained(name, "categorical_crossentropy", digits))


@pytest.mark.parametrize("loss_name", sorted(losses.LOSSES))
def test_every_loss_trains_as_keras_does(loss_name, digits):
    if BACKEND == "tensorflow" and loss_name == "binary_crossentropy":
        # Keras' backends disagree: on TensorFlow it applies a sigmoid cross-entropy to the logits its softmax
        # cached; mlpjax follows Keras on JAX (the clipped probabilities; docs/training.md). Said, not skipped.
        ours, theirs, _, _ = both_trained("adam", loss_name, digits)
        assert np.abs(ours - theirs).max() > 1e-3
        return
    assert_same_training(*both_trained("adam", loss_name, digits))


def test_optax_adam_is_not_keras_adam(digits):
    _, _, our_weights, their_weights = both_trained("optax_adam", "categorical_crossentropy", digits, "adam")
    scale = max(np.abs(b).max() for b in their_weights)
    assert max(np.abs(a - b).max() for a, b in zip(our_weights, their_weights, strict=True)) > 10 * RTOL * scale


def keras_loss_function(name):
    """The function behind Keras' loss ``name`` (a function's name or alias, or a Loss class's), else None."""
    try:
        obj = keras.losses.get(name)
    except (TypeError, ValueError):
        return None
    return getattr(obj, "fn", obj)


def test_every_keras_name_of_a_loss_is_accepted_and_recorded_canonically():
    from keras.src.losses import ALL_OBJECTS_DICT

    for ours, theirs in KERAS_LOSSES.items():
        names = [k for k in ALL_OBJECTS_DICT if keras_loss_function(k) is keras.losses.get(theirs)]
        assert len(names) >= 2 and {losses.canonical(k) for k in names} == {ours}, (ours, names)
    for alias, ours in losses.ALIASES.items():
        if alias != "huber":  # huber_loss (ours) is the tutorial's name, not Keras'
            assert keras_loss_function(alias) is keras.losses.get(KERAS_LOSSES[ours]), alias


# Every metric name and alias that is Keras' (f1 is mlpjax's; the *_macro names are scikit-learn's, tested there)
KERAS_METRICS = [n for n in (*metrics.METRICS, *metrics.ALIASES) if n != "f1" and not n.endswith("_macro")]


def test_metrics_by_name_are_keras_metrics(digits):
    x, y, batches, test = digits
    config = TrainConfig(
        dataset="digits", optimizer="adam", lr=0.01, model=model.ModelConfig(hidden=(HIDDEN,), dropout=0.0)
    )
    state = create_train_state(jax.random.PRNGKey(0), config, config.model_config(64, 10))
    for idx in batches[:40]:  # a partly trained model, so that every metric is away from its extremes
        state, _ = steps.train_step(state, {"image": jnp.asarray(x[idx]), "label": jnp.asarray(y[idx])})
    keras_model = keras_mlp(state.params)
    keras_model.compile(
        loss="categorical_crossentropy",
        metrics=[*KERAS_METRICS, keras.metrics.F1Score(average="macro", name="f1_macro")],
    )
    theirs = keras_model.evaluate(
        x[test], np.eye(10, dtype=np.float32)[y[test]], batch_size=64, verbose=0, return_dict=True
    )
    batch = {"image": jnp.asarray(x[test]), "label": jnp.asarray(y[test])}
    ours = steps.summarize(steps.eval_step(state.params, batch, model_config=state.model_config))
    for name in KERAS_METRICS:
        keys = metrics.result_keys(metrics.check_names([name])[0], 10)
        np.testing.assert_allclose([ours[k] for k in keys], np.ravel(theirs[name]), rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(ours["f1_macro"], theirs["f1_macro"], rtol=1e-6)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-6)
    # a model where the threshold matters: some outputs below 0.5 are still the argmax
    assert ours["precision"] > 0 and 0 < ours["recall"] < ours["accuracy"] and ours["recall"] != ours["recall_macro"]


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "jax", reason="the child itself (on TensorFlow)")
@pytest.mark.skipif(find_spec("tensorflow") is None, reason="TensorFlow is not installed (the bench extra)")
def test_the_same_holds_against_keras_on_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not on_tensorflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " skipped" not in done.stdout.splitlines()[-1], done.stdout[-500:]
