import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax import data, train
from mlpjax.errors import UserInputError


def small_config(**kwargs):
    defaults = dict(dataset="digits", epochs=2, batch_size=32, hidden=(32,), seed=0)
    return train.TrainConfig(**{**defaults, **kwargs})


def toy_dataset(n_train=70, n_test=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, 6), np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int32)
    return data.make_dataset("toy", x[:n_train], y[:n_train], x[n_train:], y[n_train:], num_classes=2)


def state_for(config, dataset):
    return train.create_train_state(jax.random.PRNGKey(config.seed), config,
                                    config.model_config(dataset.input_dim, dataset.num_classes))


def test_train_step_lowers_the_loss_on_a_fixed_batch():
    ds = toy_dataset()
    config = small_config(dropout=0.0, lr=0.01)
    state = state_for(config, ds)
    batch = {"image": jnp.asarray(ds.x_train), "label": jnp.asarray(ds.y_train)}
    first = None
    for _ in range(30):
        state, metrics = train.train_step(state, batch)
        first = first if first is not None else float(metrics["loss"])
    assert int(state.step) == 30
    assert float(metrics["loss"]) < 0.7 * first


def test_an_epoch_keeps_the_last_partial_batch():
    ds = toy_dataset(n_train=70)
    config = small_config(batch_size=32)
    state = state_for(config, ds)
    compiled, seconds = train.compile_epoch(state, jnp.asarray(ds.x_train), jnp.asarray(ds.y_train), batch_size=32)
    assert seconds > 0
    state, metrics = compiled(state, jnp.asarray(ds.x_train), jnp.asarray(ds.y_train), jnp.asarray(0))
    assert int(state.step) == math.ceil(70 / 32) == 3
    assert 0 <= float(metrics["accuracy"]) <= 1 and np.isfinite(float(metrics["loss"]))


def test_batch_indices_cover_every_example_once():
    order = jax.random.permutation(jax.random.PRNGKey(0), 10)
    idx, weight = train.batch_indices(10, 4, order)
    assert idx.shape == (3, 4) and weight.shape == (3, 4)
    kept = np.asarray(idx)[np.asarray(weight) > 0]
    np.testing.assert_array_equal(np.sort(kept), np.arange(10))
    np.testing.assert_array_equal(np.asarray(weight).sum(), 10)


def test_shuffle_differs_per_epoch_and_dropout_per_step():
    ds = toy_dataset()
    state = state_for(small_config(), ds)
    assert not np.array_equal(train.shuffle_key(state, 0), train.shuffle_key(state, 1))
    assert not np.array_equal(train.dropout_key(state), train.dropout_key(state.replace(step=state.step + 1)))


def test_same_seed_gives_identical_results_and_another_seed_does_not():
    ds = toy_dataset()
    a = train.fit(small_config(seed=3), ds)
    b = train.fit(small_config(seed=3), ds)
    c = train.fit(small_config(seed=4), ds)
    assert a.history == b.history and a.test_metrics == b.test_metrics
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.state.params, b.state.params)
    assert a.history != c.history


def test_fit_records_a_keras_history(tmp_path):
    ds = toy_dataset()
    result = train.fit(small_config(epochs=3), ds)
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in result.history.values())
    assert result.history["val_accuracy"][-1] == result.test_metrics["accuracy"]
    record = result.record()
    for key in ("test_loss", "test_accuracy", "history", "epoch_seconds", "compile_seconds", "device",
                "config", "dataset", "versions"):
        assert key in record
    assert record["device"] == jax.devices()[0].platform and len(record["epoch_seconds"]) == 3


def test_resuming_continues_exactly():
    ds = toy_dataset()
    full = train.fit(small_config(epochs=3), ds)
    half = train.fit(small_config(epochs=1), ds)
    rest = train.fit(small_config(epochs=3), ds, initial_state=half.state, initial_history=half.history)
    assert rest.history == full.history
    jax.tree_util.tree_map(np.testing.assert_array_equal, rest.state.params, full.state.params)


def test_evaluate_agrees_with_a_direct_computation(digits):
    result = train.fit(small_config(epochs=3), digits)
    probs = np.asarray(jax.nn.softmax(jnp.asarray(
        __import__("mlpjax").model.apply(result.state.params, digits.x_test, config=result.state.model))))
    scores = train.evaluate(result.state.params, digits.x_test, digits.y_test, config=result.state.model)
    assert scores["accuracy"] == pytest.approx((probs.argmax(-1) == digits.y_test).mean())
    nll = -np.log(probs[np.arange(len(probs)), digits.y_test]).mean()
    assert scores["loss"] == pytest.approx(nll, rel=1e-4)
    assert set(scores) == {"loss", "accuracy", "precision", "recall", "f1_score", "mse", "mae"}


def test_digits_with_the_defaults_reaches_95_percent(digits):
    result = train.fit(train.TrainConfig(dataset="digits"), digits)
    assert result.config.epochs == train.DEFAULT_EPOCHS["digits"]
    assert result.test_metrics["accuracy"] >= 0.95


def test_divergence_stops_with_the_epoch_named():
    ds = toy_dataset()
    with pytest.raises(train.TrainingDiverged, match="epoch 1"):
        train.fit(small_config(optimizer="sgd", lr=1e30, activation="relu", dropout=0.0), ds)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "--epochs"), ({"batch_size": -1}, "--batch-size"), ({"dropout": 1.5}, "--dropout"),
    ({"optimizer": "adamw"}, "valid: sgd"), ({"loss": "xent"}, "valid: categorical_crossentropy"),
    ({"activation": "gelu"}, "valid: relu"), ({"lr": 0.0}, "--lr"),
])
def test_bad_train_configs(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        small_config(**kwargs)


def test_config_round_trips_through_a_dict():
    config = small_config(hidden=(16, 8), lr=0.5)
    assert train.TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("which", ["digits", "idx"])
def test_uint8_pixels_on_the_device_train_exactly_as_float32(which, digits, idx_folder):
    ds = digits if which == "digits" else data.load_dataset("mnist", idx_folder)
    ds = ds.head()  # a fresh Dataset: nothing cached yet
    assert ds.pixel_levels == (16 if which == "digits" else 255) and ds.raw_train.dtype == np.uint8
    as_levels = train.fit(small_config(epochs=2, batch_size=16, lr=0.01), ds)
    assert "x_train" not in vars(ds) and "x_test" not in vars(ds)  # training never built the float32 copies
    floats = data.make_dataset(ds.name, ds.x_train, ds.y_train, ds.x_test, ds.y_test, num_classes=ds.num_classes)
    assert floats.pixel_levels is None and floats.raw_train.dtype == np.float32
    as_floats = train.fit(small_config(epochs=2, batch_size=16, lr=0.01), floats)
    assert as_levels.history == as_floats.history
    jax.tree_util.tree_map(np.testing.assert_array_equal, as_levels.state.params, as_floats.state.params)


def test_to_levels_is_exact_and_refuses_other_values():
    x = (np.arange(256, dtype=np.uint8).reshape(16, 16) / np.float32(255)).astype(np.float32)
    np.testing.assert_array_equal(data.to_levels(x, 255, chunk=5), np.arange(256).reshape(16, 16))
    np.testing.assert_array_equal(data.level_values(255)[data.to_levels(x, 255)], x)
    with pytest.raises(ValueError, match="not multiples of 1/255"):
        data.to_levels(x + np.float32(1e-3), 255)
    # integers are the levels themselves, checked to be in range
    np.testing.assert_array_equal(data.to_levels(np.array([[0, 16]]), 16), [[0, 16]])
    with pytest.raises(ValueError, match=r"in \[0, 16\], got 0 to 17"):
        data.to_levels(np.array([[0, 17]]), 16)


def test_a_dataset_stores_images_as_levels_and_gives_their_float_features(digits):
    assert digits.raw_train.dtype == np.uint8 and digits.x_train.dtype == np.float32
    np.testing.assert_array_equal(digits.x_train, digits.raw_train.astype(np.float32) / 16)
    x, label = digits.test_example(3)
    np.testing.assert_array_equal(x, digits.x_test[3])
    assert label == int(digits.y_test[3])
    with pytest.raises(ValueError, match="raw features must be uint8"):
        data.Dataset("bad", digits.x_train, digits.y_train, digits.x_test, digits.y_test, 10, pixel_levels=16)


@pytest.mark.mnist
def test_one_mnist_epoch_reaches_95_percent(mnist):
    result = train.fit(train.TrainConfig(dataset="mnist", epochs=1), mnist)
    assert int(result.state.step) == 469
    assert result.test_metrics["accuracy"] >= 0.95
