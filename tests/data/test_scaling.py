"""Feature scaling (mlpjax.data.scaling): minmax and standard compute what scikit-learn's scalers compute, on
encoded images as on floats; a Scaler is validated however it is made."""

import numpy as np
import pytest
from conftest import toy_dataset

from mlpjax import data
from mlpjax.data import scaling
from mlpjax.errors import FieldError, UserInputError


def table(seed=0):
    """Train and test rows of features of very different magnitudes, one of them constant, one negative."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(230, 5)) * np.array([1e-3, 1.0, 1e3, 0.0, 50.0]) + np.array([0.0, -5.0, 1e4, 7.0, 0.0])
    x = x.astype(np.float32)
    return x[:180], x[180:]


@pytest.mark.parametrize(
    "kind, name", [("minmax", "MinMaxScaler"), ("standard", "StandardScaler")], ids=["minmax", "standard"]
)
def test_a_scaling_computes_what_scikit_learns_scaler_computes(kind, name):
    """Fitted on the training rows, it scales the training and the test rows as scikit-learn's scaler of the same
    name does (a constant feature included: scale 1), to float32 precision."""
    import sklearn.preprocessing

    train, test = table()
    reference = getattr(sklearn.preprocessing, name)().fit(train)
    scaler = scaling.fit_scaler(train, kind)
    assert scaler.kind == kind and scaler.shift.dtype == scaler.scale.dtype == np.float32
    assert scaler.scale[3] == 1  # the constant feature
    for rows in (train, test):
        np.testing.assert_allclose(scaler.apply(rows), reference.transform(rows), rtol=1e-5, atol=1e-5)
    if kind == "standard":
        np.testing.assert_allclose(scaler.shift, reference.mean_, rtol=1e-6)
        np.testing.assert_allclose(scaler.scale, reference.scale_, rtol=1e-6)
    else:
        np.testing.assert_allclose(scaler.shift, reference.data_min_, rtol=1e-6)
        np.testing.assert_allclose(scaler.scale[[0, 1, 2, 4]], reference.data_range_[[0, 1, 2, 4]], rtol=1e-6)


def test_none_is_no_scaler_and_an_unknown_kind_names_normalize():
    train, _ = table()
    assert scaling.fit_scaler(train, "none") is None
    ds = toy_dataset()
    assert scaling.scaled_dataset(ds, None) is ds
    with pytest.raises(FieldError, match="normalize 'zscore' is unknown; valid: none, minmax, standard") as e:
        scaling.fit_scaler(train, "zscore")
    assert e.value.field == "normalize"


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_encoded_images_are_fitted_and_scaled_as_their_float_features(kind, digits):
    """uint8 levels decoded a few rows at a time give the scaler (and the scaled rows) of the float features."""
    from_levels = scaling.fit_scaler(digits.encoded_train, kind, pixel_levels=digits.pixel_levels, chunk=100)
    from_floats = scaling.fit_scaler(digits.x_train, kind)
    assert from_levels.same_as(from_floats)
    scaled = scaling.scaled_dataset(digits, from_levels)
    assert scaled.pixel_levels is None and scaled.encoded_train.dtype == np.float32
    np.testing.assert_array_equal(scaled.encoded_test, from_floats.apply(digits.x_test))
    assert (scaled.class_names, scaled.image_shape, scaled.y_train is digits.y_train) == (
        digits.class_names,
        digits.image_shape,
        True,
    )


@pytest.mark.parametrize(
    "shift, scale, field, message",
    [
        (np.zeros(3, np.float32), np.array([1, 0, 1], np.float32), "scale", "must be positive; feature 1"),
        (np.zeros(3, np.float32), np.array([1, -2, 1], np.float32), "scale", "must be positive; feature 1"),
        (np.array([0, np.nan, 0], np.float32), np.ones(3, np.float32), "shift", "must be finite; feature 1"),
        (np.zeros(3), np.ones(3, np.float32), "shift", "float32 (features,) array, got float64"),
        (np.zeros((1, 3), np.float32), np.ones(3, np.float32), "shift", "float32 (features,) array"),
        (np.zeros(2, np.float32), np.ones(3, np.float32), "scale", "has 3 features; shift has 2"),
    ],
)
def test_a_scaler_is_checked_on_construction(shift, scale, field, message):
    with pytest.raises(FieldError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        scaling.Scaler("standard", shift, scale)
    assert e.value.field == field


def test_a_scaled_value_beyond_float32_is_one_line_naming_the_row():
    ds = data.make_dataset(
        "wide",
        (np.array([[0.0], [1e-30], [0.0], [1e-30]], np.float32), np.array([0, 1, 0, 1])),
        (np.array([[0.0], [3e38]], np.float32), np.array([0, 1])),
        num_classes=2,
    )
    scaler = scaling.fit_on_training_rows(ds, "minmax")
    with pytest.raises(UserInputError, match="'wide': test row 1, feature 0 scaled by the minmax scaling leaves"):
        scaling.scaled_dataset(ds, scaler)
