"""fit: epochs, history, determinism, resuming, divergence."""

import jax
import numpy as np
import pytest
from conftest import small_config, toy_dataset

from mlpjax import data
from mlpjax.core.config import TrainConfig
from mlpjax.errors import FieldError
from mlpjax.training import train


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
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 3 for v in result.history.values())
    assert result.history["val_accuracy"][-1] == result.test_metrics["accuracy"]
    record = result.record()
    for key in (
        "test_loss",
        "test_accuracy",
        "history",
        "epoch_seconds",
        "compile_seconds",
        "device",
        "config",
        "dataset",
        "versions",
    ):
        assert key in record
    assert record["device"] == jax.devices()[0].platform and len(record["epoch_seconds"]) == 3


def test_resuming_continues_exactly():
    ds = toy_dataset()
    full = train.fit(small_config(epochs=3), ds)
    half = train.fit(small_config(epochs=1), ds)
    rest = train.fit(small_config(epochs=3), ds, resume_from=train.Resumed(half.state, half.history))
    assert rest.history == full.history
    jax.tree_util.tree_map(np.testing.assert_array_equal, rest.state.params, full.state.params)


def test_digits_with_the_defaults_reaches_95_percent(digits):
    result = train.fit(TrainConfig(dataset="digits"), digits)
    assert result.config.epochs == data.DATASETS["digits"].default_epochs
    assert result.test_metrics["accuracy"] >= 0.95


def test_divergence_stops_with_the_epoch_named():
    ds = toy_dataset()
    with pytest.raises(train.TrainingDiverged, match="epoch 1: the loss is nan; try a lower lr$"):
        train.fit(small_config(optimizer="sgd", lr=1e30, activation="relu", dropout=0.0), ds)


@pytest.mark.parametrize("which", ["digits", "idx"])
def test_uint8_pixels_on_the_device_train_exactly_as_float32(which, digits, idx_folder):
    ds = digits if which == "digits" else data.load_dataset("mnist", idx_folder)
    ds = ds.head()  # a fresh Dataset: nothing cached yet
    assert ds.pixel_levels == (16 if which == "digits" else 255) and ds.encoded_train.dtype == np.uint8
    as_levels = train.fit(small_config(dataset=ds.name, epochs=2, batch_size=16, lr=0.01), ds)
    assert "x_train" not in vars(ds) and "x_test" not in vars(ds)  # training never built the float32 copies
    floats = data.make_dataset(ds.name, (ds.x_train, ds.y_train), (ds.x_test, ds.y_test), num_classes=ds.num_classes)
    assert floats.pixel_levels is None and floats.encoded_train.dtype == np.float32
    as_floats = train.fit(small_config(dataset=ds.name, epochs=2, batch_size=16, lr=0.01), floats)
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
    assert digits.encoded_train.dtype == np.uint8 and digits.x_train.dtype == np.float32
    np.testing.assert_array_equal(digits.x_train, digits.encoded_train.astype(np.float32) / 16)
    x, label = digits.test_example(3)
    np.testing.assert_array_equal(x, digits.x_test[3])
    assert label == int(digits.y_test[3])
    with pytest.raises(FieldError, match="encoded_train must be uint8"):
        data.Dataset("bad", digits.x_train, digits.y_train, digits.x_test, digits.y_test, 10, pixel_levels=16)


@pytest.mark.mnist
def test_one_mnist_epoch_reaches_95_percent(mnist):
    result = train.fit(TrainConfig(dataset="mnist", epochs=1), mnist)
    assert int(result.state.step) == 469
    assert result.test_metrics["accuracy"] >= 0.95


# issue 26, item 11: fit trains on the dataset its config names, or on the user's own


def test_fit_refuses_a_dataset_other_than_the_configs(digits):
    with pytest.raises(FieldError, match="dataset is 'quadrants' but the data given is 'digits'") as exc:
        train.fit(small_config(dataset="quadrants", epochs=1), digits)
    assert exc.value.field == "dataset"
    renamed = data.Dataset(
        "quadrants", digits.encoded_train, digits.y_train, digits.encoded_test, digits.y_test, 10, pixel_levels=16
    )  # the name of one, the shape of another
    with pytest.raises(
        FieldError,
        match=r"'quadrants' has 2 features and 4 classes; the data given has 64 features "
        r"and 10 classes",
    ):
        train.make_plan(small_config(dataset="quadrants", epochs=1), renamed)
    assert train.make_plan(small_config(), toy_dataset()).dataset.name == "toy"  # the user's own data trains


def test_save_every_saves_the_epochs_it_says_and_changes_no_number(digits):
    """``save`` gets the first, every N-th and the last epoch, each a Resumed that continues exactly; the
    numbers are the same whatever N, or without saving."""
    config = small_config(epochs=7, hidden=(16,), dropout=0.2)  # dropout: the resumed PRNG stream matters
    plain = train.fit(config, digits)
    runs = {}
    for every in (1, 3):
        saved: dict[int, train.Resumed] = {}
        runs[every] = train.fit(config, digits, save=train.Saving(saved.__setitem__, every))
        assert list(saved) == ([1, 2, 3, 4, 5, 6, 7] if every == 1 else [1, 3, 6, 7])
        for epoch, resumed in saved.items():
            assert len(resumed.history["loss"]) == epoch and resumed.history["loss"] == plain.history["loss"][:epoch]
            assert int(resumed.state.step) == epoch * 43  # ceil(1347 / 32) steps an epoch
        rest = train.fit(config, digits, resume_from=saved[3])  # a host copy taken then: later epochs left it be
        assert rest.history == plain.history
        jax.tree_util.tree_map(np.testing.assert_array_equal, rest.state.params, plain.state.params)
    for result in runs.values():
        assert result.history == plain.history and result.test_metrics == plain.test_metrics
        jax.tree_util.tree_map(np.testing.assert_array_equal, result.state.params, plain.state.params)


@pytest.mark.parametrize("every", [0, -1, 1.5, "3", True])
def test_save_every_must_be_a_positive_integer(every):
    with pytest.raises(FieldError, match="^save_every must be"):
        train.fit(small_config(), toy_dataset(), save=train.Saving(lambda *a: None, every))


def _with_rows(ds, train_rows=None, test_rows=None):
    """``ds`` with some of its training rows (by index) and test rows set to extreme values."""
    import dataclasses

    x_train, x_test = ds.encoded_train.copy(), ds.encoded_test.copy()
    if train_rows is not None:
        x_train[train_rows] = 1e6
    if test_rows is not None:
        x_test[test_rows] = -1e6
    return dataclasses.replace(ds, encoded_train=x_train, encoded_test=x_test)


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_the_scaling_is_fitted_on_the_rows_trained_on_only(kind):
    """Validation rows (the last of the training split) and test rows set to extreme values leave the fitted
    scaling as it was; a row trained on changes it."""
    ds = toy_dataset()
    config = small_config(normalize=kind, validation_split=0.2)  # 56 rows trained on, 14 validate
    plan = train.make_plan(config, ds)
    assert plan.scaler.same_as(data.scaling.fit_scaler(ds.x_train[:56], kind))
    assert train.fit_scaler(config, _with_rows(ds, train_rows=slice(56, None), test_rows=slice(None))).same_as(
        plan.scaler
    )
    assert not train.fit_scaler(config, _with_rows(ds, train_rows=[55])).same_as(plan.scaler)
    np.testing.assert_array_equal(plan.val.encoded_test, plan.scaler.apply(ds.x_train[56:]))
    np.testing.assert_array_equal(plan.dataset.encoded_test, plan.scaler.apply(ds.x_test))


def test_normalize_trains_as_none_on_the_rows_scaled_beforehand():
    """fit with normalize is fit with none on the data scaled by the same scaler, bit for bit; the result's
    classifier takes the raw rows and gives the probabilities of the model on the scaled ones."""
    ds = toy_dataset()
    scaled = train.fit(small_config(normalize="standard", validation_split=0.25, epochs=3), ds)
    scaler = scaled.scaler
    by_hand = train.fit(small_config(validation_split=0.25, epochs=3), data.scaling.scaled_dataset(ds, scaler))
    assert scaled.history == by_hand.history and scaled.test_metrics == by_hand.test_metrics
    assert scaled.record()["scaling"]["kind"] == "standard" and "scaling" not in by_hand.record()
    raw = scaled.classifier.predict_proba(ds.x_test)
    np.testing.assert_array_equal(raw, by_hand.classifier.predict_proba(scaler.apply(ds.x_test)))


def test_normalize_none_trains_on_the_dataset_as_it_is(digits):
    """none: the plan's rows are the dataset's own arrays (no copy, no scaling op anywhere), images kept as uint8."""
    plan = train.make_plan(small_config(validation_split=0.1), digits)
    assert plan.scaler is None and plan.dataset is digits
    assert np.shares_memory(plan.train.encoded_train, digits.encoded_train)
    assert plan.train.pixel_levels == digits.pixel_levels
    assert plan.train.encoded_train.dtype == np.uint8


def test_images_with_normalize_train_on_float32_features(digits):
    """Allowed: the scaled pixels are float32 (4 bytes a feature), counted in the memory estimate."""
    from mlpjax.training import budget

    config = small_config(normalize="minmax")
    plan = train.make_plan(config, digits)
    assert plan.train.pixel_levels is None and plan.train.encoded_train.dtype == np.float32
    model_config = config.model_config(digits.input_dim, digits.num_classes)
    none = budget.training_bytes(small_config(), model_config, digits)["data"]
    n = len(digits.y_train) + len(digits.y_test)
    assert budget.training_bytes(config, model_config, digits)["data"] == none + 8 * n * digits.input_dim
    assert train.fit(config, digits).test_metrics["accuracy"] > 0.5


def test_a_resumed_fit_keeps_the_scaler_it_is_given():
    ds = toy_dataset()
    config = small_config(normalize="minmax", epochs=2)
    first = train.fit(config.replace(epochs=1), ds)
    whole = train.fit(config, ds)
    resumed = train.fit(config, ds, resume_from=train.Resumed(first.state, first.history, scaler=first.scaler))
    assert resumed.history == whole.history and resumed.scaler.same_as(whole.scaler)
    with pytest.raises(FieldError, match="normalize is 'standard' but the scaler given is 'minmax'"):
        train.make_plan(config.replace(normalize="standard"), ds, scaler=first.scaler)
