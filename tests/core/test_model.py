import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax.core import model
from mlpjax.errors import FieldError, UserInputError


def test_step_and_relu_on_the_tutorials_example():
    x = jnp.array([1.0, -2.0, 3.0, -4.0, 7.0])
    np.testing.assert_array_equal(model.ACTIVATIONS["step"](x), [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(model.ACTIVATIONS["relu"](x), [1, 0, 3, 0, 7])


def test_step_has_zero_gradient_almost_everywhere():
    grad = jax.grad(lambda x: jnp.sum(model.step(x)))(jnp.array([-2.0, -0.5, 0.5, 3.0]))
    np.testing.assert_array_equal(grad, 0.0)


def test_init_shapes_glorot_uniform_and_zero_biases():
    config = model.ModelConfig(input_dim=784, hidden=(512, 64), num_classes=10)
    params = model.init(jax.random.PRNGKey(0), config)
    assert set(params) == {"hidden_0", "hidden_1", "output"}
    for name, (fan_in, fan_out) in {"hidden_0": (784, 512), "hidden_1": (512, 64), "output": (64, 10)}.items():
        kernel, bias = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        assert kernel.shape == (fan_in, fan_out)
        np.testing.assert_array_equal(bias, np.zeros(fan_out))
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        # uniform on [-limit, limit]: standard deviation limit / sqrt(3)
        assert abs(kernel.std() - limit / np.sqrt(3)) < 0.05 * limit
    assert model.param_count(params) == 784 * 512 + 512 + 512 * 64 + 64 + 64 * 10 + 10


def test_init_is_a_function_of_the_key():
    config = model.ModelConfig(input_dim=8, hidden=(4,), num_classes=3)
    a, b = model.init(jax.random.PRNGKey(1), config), model.init(jax.random.PRNGKey(1), config)
    c = model.init(jax.random.PRNGKey(2), config)
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["hidden_0"]["kernel"], c["hidden_0"]["kernel"])


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "step", "tanh"])
def test_apply_matches_a_hand_written_forward_pass(activation):
    config = model.ModelConfig(input_dim=6, hidden=(5, 4), activation=activation, dropout=0.0, num_classes=3)
    params = model.init(jax.random.PRNGKey(0), config)
    x = jax.random.uniform(jax.random.PRNGKey(1), (7, 6))
    act = {
        "relu": lambda z: np.maximum(z, 0),
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "step": lambda z: (z > 0).astype(np.float32),
        "tanh": np.tanh,
    }[activation]
    h = np.asarray(x)
    for name in ("hidden_0", "hidden_1"):
        h = act(h @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"]))
    expected = h @ np.asarray(params["output"]["kernel"]) + np.asarray(params["output"]["bias"])
    np.testing.assert_allclose(model.apply(params, x, model_config=config), expected, rtol=1e-5, atol=1e-5)


def test_dropout_is_inverted_and_only_active_in_training():
    config = model.ModelConfig(input_dim=4, hidden=(2000,), dropout=0.2, num_classes=2)
    params = model.init(jax.random.PRNGKey(0), config)
    x = jnp.ones((3, 4))
    inference = model.apply(params, x, model_config=config)
    np.testing.assert_array_equal(inference, model.apply(params, x, model_config=config, rng=jax.random.PRNGKey(5)))
    masks = model.dropout_masks(jax.random.PRNGKey(5), config, 3)
    assert masks[0].shape == (3, 2000) and masks[0].dtype == jnp.bool_
    assert abs(float(masks[0].mean()) - 0.8) < 0.02
    kept = model.apply_dropout(jnp.ones((3, 2000)), masks[0], 0.2)
    np.testing.assert_allclose(np.unique(np.asarray(kept)), [0.0, 1.25])
    a = model.apply(params, x, model_config=config, train=True, rng=jax.random.PRNGKey(5))
    b = model.apply(params, x, model_config=config, train=True, rng=jax.random.PRNGKey(5))
    c = model.apply(params, x, model_config=config, train=True, rng=jax.random.PRNGKey(6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, inference)


def test_training_with_dropout_needs_a_key():
    config = model.ModelConfig(input_dim=4, hidden=(3,), dropout=0.5, num_classes=2)
    params = model.init(jax.random.PRNGKey(0), config)
    with pytest.raises(ValueError, match="PRNG key"):
        model.apply(params, jnp.ones((1, 4)), model_config=config, train=True)


def test_predict_proba_is_a_distribution_and_classifier_agrees():
    config = model.ModelConfig(input_dim=5, hidden=(8,), num_classes=4)
    params = model.init(jax.random.PRNGKey(0), config)
    x = np.random.default_rng(0).random((6, 5), np.float32)
    probs = np.asarray(model.predict_proba(params, x, model_config=config))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    clf = model.Classifier(params, config)
    np.testing.assert_allclose(clf.predict_proba(x), probs, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(x), probs.argmax(-1))
    assert clf.predict(x[0]) == probs[0].argmax()


def test_classifier_predict_proba_takes_rows_images_or_one_row_in_batches(monkeypatch):
    """The contract of ``Classifier.predict_proba``: (n, D) rows, (n, H, W) images or one (D,) row -> float32
    (n, C) (or (C,)), computed ``batch_size`` rows at a time: the compiled model never sees more."""
    config = model.ModelConfig(input_dim=16, hidden=(8,), num_classes=3)
    clf = model.Classifier(model.init(jax.random.PRNGKey(0), config), config)
    x = np.random.default_rng(0).random((10, 16))  # float64: converted a batch at a time
    whole = np.asarray(model.predict_proba(clf.params, jnp.asarray(x, jnp.float32), model_config=config))
    seen = []
    compiled = model._predict_proba_jit

    def spy(params, part, *, model_config):
        seen.append(part.shape)
        return compiled(params, part, model_config=model_config)

    monkeypatch.setattr(model, "_predict_proba_jit", spy)
    probs = clf.predict_proba(x, batch_size=4)
    assert seen == [(4, 16), (4, 16), (2, 16)] and probs.dtype == np.float32 and probs.shape == (10, 3)
    np.testing.assert_allclose(probs, whole, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(clf.predict_proba(x.reshape(10, 4, 4)), whole, rtol=1e-6, atol=1e-7)  # images
    np.testing.assert_allclose(clf.predict_proba(x[3]), whole[3], rtol=1e-6, atol=1e-7)  # one row
    assert clf.predict_proba(np.zeros((0, 16))).shape == (0, 3)
    np.testing.assert_array_equal(clf.predict(x, batch_size=3), whole.argmax(-1))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (
            np.zeros((2, 15)),
            r"x must be \(n, 16\) rows, \(n, H, W\) images of H x W = 16 or one \(16,\) row, got \(2, 15\)$",
        ),
        (np.zeros((4, 4)), r"got \(4, 4\); one image is x\[None\]$"),
        (np.zeros((1, 2, 4, 2)), r"got \(1, 2, 4, 2\)$"),
        (np.array(["a"] * 16), r"x must hold real numbers, got dtype <U1$"),
        ([[0.0] * 16, [0.0]], r"x must be an array of numbers \("),
        (
            np.where(np.eye(5, 16) > 0, np.nan, 0.0),
            r"x row 0, column 0 is nan; features must be finite \(in float32\)$",
        ),
        (np.pad([[1e300]], ((6, 0), (2, 13))), r"x row 6, column 2 is 1e\+300; features must be finite"),
    ],
    ids=["width", "one-image", "4-d", "text", "ragged", "nan", "beyond-float32"],
)
def test_classifier_predict_proba_refuses_bad_input_naming_x(x, message):
    config = model.ModelConfig(input_dim=16, hidden=(8,), num_classes=3)
    clf = model.Classifier(model.init(jax.random.PRNGKey(0), config), config)
    with pytest.raises(FieldError, match=message) as e:
        clf.predict_proba(x, batch_size=4)  # the bad value of row 6 is found in the second batch
    assert e.value.field == "x"
    with pytest.raises(FieldError, match="batch_size must be at least 1, got 0"):
        clf.predict_proba(np.zeros((1, 16)), batch_size=0)


def test_one_hot_is_to_categorical():
    np.testing.assert_array_equal(model.one_hot(jnp.array([0, 2, 1]), 3), [[1, 0, 0], [0, 0, 1], [0, 1, 0]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation": "softsign"}, "relu, sigmoid, step, tanh"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"dropout": -0.1}, "dropout must be in"),
        ({"hidden": (0,)}, "hidden sizes must be positive integers"),
        (
            {"hidden": (2**63,)},
            r"hidden sizes must be below 2\*\*63 \(an array dimension\), got \[9223372036854775808\]",
        ),
        ({"input_dim": 2**63}, "input_dim must be at most 9223372036854775807"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_bad_model_configs_name_the_problem(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        model.ModelConfig(**kwargs)


@pytest.mark.parametrize("k, n", [(512, 10), (16, 64), (784, 512), (8, 10)])
def test_matmul_has_the_gradients_of_a_plain_product(k, n):
    # of these, only (512, 10) is transposed: at most NARROW_OUTPUT wide and narrower than its input
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((32, k), np.float32), rng.standard_normal((k, n), np.float32)
    g = rng.standard_normal((32, n), np.float32)
    ours = jax.grad(lambda x, w: jnp.sum(model.matmul(x, w) * g), argnums=(0, 1))(x, w)
    plain = jax.grad(lambda x, w: jnp.sum((x @ w) * g), argnums=(0, 1))(x, w)
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    # on CPU, a narrow output's weight gradient is formed as (n, k) behind an optimization barrier
    hlo = jax.jit(jax.grad(lambda w: jnp.sum(model.matmul(x, w) * g))).lower(w).as_text()
    assert ("optimization_barrier" in hlo) == (jax.default_backend() == "cpu" and n <= model.NARROW_OUTPUT and n < k)
    # forward-mode autodiff works too (jvp, hence jacfwd and hessian)
    _, tangent = jax.jvp(lambda w: model.matmul(x, w), (w,), (w,))
    np.testing.assert_allclose(tangent, x @ w, rtol=1e-5, atol=1e-3)


def test_dense_layers_take_any_leading_shape():
    config = model.ModelConfig(input_dim=5, hidden=(8,), num_classes=3, dropout=0.0)
    params = model.init(jax.random.PRNGKey(0), config)
    x = np.random.default_rng(0).random((2, 4, 5), np.float32)
    batched = np.asarray(model.apply(params, x.reshape(8, 5), model_config=config))
    np.testing.assert_allclose(model.apply(params, x, model_config=config), batched.reshape(2, 4, 3), rtol=1e-6)
    np.testing.assert_allclose(model.apply(params, x[0, 0], model_config=config), batched[0], rtol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        model.ModelConfig(input_dim=12, hidden=(8, 6), num_classes=3),
        model.ModelConfig(input_dim=5, hidden=(), dropout=0.0, num_classes=2),
        model.ModelConfig(input_dim=7, hidden=(4,), dropout=0.0, num_classes=3),
    ],
)
def test_the_config_describes_the_params_that_init_makes(config):
    params = model.init(jax.random.PRNGKey(0), config)
    assert jax.tree_util.tree_map(np.shape, params) == config.param_shapes()
    assert config.param_count() == model.param_count(params)
    assert config.layer_names() == [f"hidden_{i}" for i in range(len(config.hidden))] + ["output"]
    assert config.widths() == (config.input_dim, *config.hidden, config.num_classes)
    assert [layer.name for layer in config.layers() if layer.kind == "dropout"] == [None] * (
        len(config.hidden) if config.dropout > 0 else 0
    )
    # the memory estimate's floats per example: the input and every Dense layer's output
    assert config.activation_units() == sum(config.widths())


def test_tensor_splits_name_hidden_units_and_output_inputs():
    config = model.ModelConfig(input_dim=12, hidden=(8, 6), num_classes=3)
    columns, rows, units = (False, True), (True, False), (True,)
    assert config.tensor_splits() == {
        "hidden_0": {"kernel": columns, "bias": units},
        "hidden_1": {"kernel": columns, "bias": units},
        "output": {"kernel": rows},
    }
    assert config.split_widths() == (6, 8)
    assert model.ModelConfig(input_dim=12, hidden=(), num_classes=3).split_widths() == (12,)


def test_chosen_fields_are_what_a_training_config_records():
    from mlpjax.core.config import TrainConfig

    config = model.ModelConfig(hidden=(32, 16), activation="tanh", dropout=0.1)
    chosen = model.ModelConfig.chosen_fields()
    assert chosen[:3] == ("hidden", "activation", "dropout") and not {"input_dim", "num_classes"} & set(chosen)
    assert list(config.chosen()) == list(chosen)
    assert {k: config.chosen()[k] for k in chosen[:3]} == {"hidden": [32, 16], "activation": "tanh", "dropout": 0.1}
    flat = TrainConfig(dataset="digits", model=config).to_dict()
    assert TrainConfig.from_dict(flat).model == config and tuple(flat)[-len(chosen) :] == chosen


def test_hidden_outputs_are_what_the_next_layer_reads():
    config = model.ModelConfig(input_dim=6, hidden=(5, 4), activation="tanh", dropout=0.5, num_classes=3)
    params = model.init(jax.random.PRNGKey(3), config)
    x = jax.random.uniform(jax.random.PRNGKey(4), (7, 6))
    h0, h1 = model.hidden_outputs(params, x, model_config=config)
    np.testing.assert_allclose(h0, jnp.tanh(x @ params["hidden_0"]["kernel"] + params["hidden_0"]["bias"]), atol=1e-6)
    np.testing.assert_allclose(h1, jnp.tanh(h0 @ params["hidden_1"]["kernel"] + params["hidden_1"]["bias"]), atol=1e-6)
    logits = h1 @ params["output"]["kernel"] + params["output"]["bias"]
    np.testing.assert_allclose(model.apply(params, x, model_config=config), logits, atol=1e-6)


def _scaled_classifier(width=4, classes=3):
    from mlpjax.data import scaling

    config = model.ModelConfig(input_dim=width, hidden=(8,), num_classes=classes)
    params = model.init(jax.random.PRNGKey(0), config)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(50, width)) * [1, 10, 100, 1000][:width]).astype(np.float32)
    return model.Classifier(params, config, scaling.fit_scaler(x, "standard")), x


def test_a_classifier_with_a_scaler_takes_raw_rows():
    """Raw rows in: the probabilities of the same params on the rows scaled by hand, for rows, one row and
    images, whatever the batch size."""
    classifier, x = _scaled_classifier()
    bare = model.Classifier(classifier.params, classifier.model_config)
    want = bare.predict_proba(classifier.scaler.apply(x))
    np.testing.assert_array_equal(classifier.predict_proba(x), want)
    np.testing.assert_array_equal(classifier.predict_proba(x, batch_size=7), want)
    np.testing.assert_array_equal(classifier.predict_proba(x[3]), bare.predict_proba(classifier.scaler.apply(x[3])))
    np.testing.assert_array_equal(classifier.predict_proba(x.reshape(50, 2, 2)), want)
    assert not np.allclose(bare.predict_proba(x), want, atol=1e-3)


def test_a_classifiers_scaler_must_fit_its_model_and_keep_values_finite():
    from mlpjax.data import scaling

    classifier, x = _scaled_classifier()
    with pytest.raises(FieldError, match="scaler scales 3 features; the model takes 4"):
        model.Classifier(classifier.params, classifier.model_config, scaling.fit_scaler(x[:, :3], "minmax"))
    with pytest.raises(FieldError, match="scaler must be a mlpjax.data.scaling.Scaler or None"):
        model.Classifier(classifier.params, classifier.model_config, "standard")
    tiny = scaling.Scaler("minmax", np.zeros(4, np.float32), np.full(4, 1e-30, np.float32))
    beyond = "x row 1, column 0 is .*, which the model.s minmax scaling takes beyond float32.s range"
    with pytest.raises(FieldError, match=beyond):
        model.Classifier(classifier.params, classifier.model_config, tiny).predict_proba(
            np.array([[0, 0, 0, 0], [1e38, 0, 0, 0]], np.float32)
        )
