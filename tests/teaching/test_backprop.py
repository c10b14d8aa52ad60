"""Hand-written backpropagation (mlpjax.teaching.backprop) against the tutorial's numbers and against jax.grad in
float64."""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpjax import cli
from mlpjax.core import losses, model
from mlpjax.errors import UserInputError
from mlpjax.teaching import backprop, gradcheck

X64_AT_IMPORT = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]  # jax.config's flags are attributes made at run time
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sig_digits(quoted: str) -> int:
    return len(quoted.lstrip("-").replace(".", "").lstrip("0"))


def assert_quoted(value: float, quoted: str, what: str = "", units: float = 0.5) -> None:
    """``value`` is the tutorial's number to as many significant digits as it quotes: within ``units`` of its
    last digit (0.5: rounds to it; the article's intermediate values, worked from rounded numbers, get 1)."""
    n = sig_digits(quoted)
    last = 10.0 ** (math.floor(math.log10(abs(float(quoted)))) - n + 1)
    assert abs(value - float(quoted)) <= units * last * (1 + 1e-9), (
        f"{what}: {value!r} is not {quoted} to {n} significant digits"
    )


# The numbers (E_total, the w5 factors, w1, the updated weights) and the article's intermediate values
# (the latter from the article's text, where some are worked out from already rounded numbers).
ARTICLE_VALUES = {
    "net_h1": "0.3775",
    "out_h1": "0.593269992",
    "out_h2": "0.596884378",
    "net_o1": "1.105905967",
    "out_o1": "0.75136507",
    "out_o2": "0.772928465",
    "E_o1": "0.274811083",
    "E_o2": "0.023560026",
    "E_total": "0.298371109",
    "dE_dout_o1": "0.74136507",
    "dout_dnet_o1": "0.186815602",
    "delta_o1": "0.138498562",
    "dE_o1_dout_h1": "0.055399425",
    "dE_o2_dout_h1": "-0.019049119",
    "dE_dout_h1": "0.036350306",
    "dout_dnet_h1": "0.241300709",
}
ARTICLE_GRADS = {"w1": "0.000438568", "w5": "0.082167041"}
ARTICLE_UPDATED = {
    "w1": "0.149780716",
    "w2": "0.19956143",
    "w3": "0.24975114",
    "w4": "0.29950229",
    "w5": "0.35891648",
    "w6": "0.408666186",
    "w7": "0.511301270",
    "w8": "0.561370121",
}


@pytest.fixture(scope="module")
def step():
    return backprop.worked_step(backprop.ARTICLE)


@pytest.fixture(scope="module")
def run10k():
    return backprop.worked_train(backprop.ARTICLE, 10_000)


# ---------------------------------------------------------------------------------------------- worked example


@pytest.mark.parametrize("name", sorted(ARTICLE_VALUES))
def test_worked_example_walkthrough_values(step, name):
    assert_quoted(step.values()[name], ARTICLE_VALUES[name], name, units=1.0)


def test_worked_example_grads_and_updates(step):
    for name, quoted in ARTICLE_GRADS.items():
        assert_quoted(step.grads[name], quoted, f"dE/d{name}")
    for name, quoted in ARTICLE_UPDATED.items():
        assert_quoted(step.updated[name], quoted, f"updated {name}")
    # w5's gradient is the product of the three chain-rule factors; w1's path runs through both outputs.
    v = step.values()
    assert step.grads["w5"] == pytest.approx(v["dE_dout_o1"] * v["dout_dnet_o1"] * v["out_h1"], rel=1e-15)
    w = backprop.ARTICLE.weight_dict()
    assert v["dE_o1_dout_h1"] == pytest.approx(v["delta_o1"] * w["w5"], rel=1e-15)  # w5 before the update
    assert v["dE_o2_dout_h1"] == pytest.approx(v["delta_o2"] * w["w7"], rel=1e-15)
    assert step.grads["w1"] == pytest.approx(
        (v["dE_o1_dout_h1"] + v["dE_o2_dout_h1"]) * v["dout_dnet_h1"] * backprop.ARTICLE.inputs[0], rel=1e-15
    )


def test_worked_example_biases_are_not_updated(step):
    nxt = backprop.worked_step(backprop.ARTICLE.with_weights(step.updated))
    assert nxt.example.biases == backprop.ARTICLE.biases
    assert nxt.trace.total_error < step.trace.total_error


def test_worked_example_matches_jax_grad_to_1e_12(step):
    reference = gradcheck.article_jax_grads(backprop.ARTICLE)
    check = gradcheck.assert_grads_close(step.grads, reference, rtol=0.0, atol=1e-12)
    assert check.max_abs_diff < 1e-12
    # ... and at other weights too, e.g. halfway through training.
    later = backprop.ARTICLE.with_weights(backprop.worked_train(backprop.ARTICLE, 50).weights)
    gradcheck.assert_grads_close(
        backprop.worked_step(later).grads, gradcheck.article_jax_grads(later), rtol=0.0, atol=1e-12
    )


def test_worked_example_shared_bias_gradients_match_jax():
    ex = backprop.ARTICLE

    def error(b):
        return gradcheck.article_error(ex.weight_dict(), backprop.WorkedExample(biases=(b[0], b[1])))

    with gradcheck.x64():
        reference = np.asarray(jax.grad(error)(jnp.asarray(ex.biases, jnp.float64)))
    trace = backprop.worked_step(ex).trace
    np.testing.assert_allclose([float(g) for g in trace.bias_grads], reference, rtol=0, atol=1e-12)


def test_training_reaches_the_articles_error(run10k):
    errors = run10k.errors
    assert len(errors) == 10_001
    assert np.all(np.diff(errors) < 0), "the error falls at every update"
    # The article's 0.0000351085 "after repeating this process 10,000 times" is the error of the
    # 10000th forward pass, i.e. before that pass's update (9999 updates done).
    assert_quoted(errors[9_999], "0.0000351085", "E_total of the 10000th pass")
    assert errors[10_000] < errors[9_999]
    out = backprop.worked_step(backprop.ARTICLE.with_weights(run10k.weights)).trace.outs[-1]
    assert run10k.outputs == (float(out[0]), float(out[1]))
    assert abs(run10k.outputs[0] - 0.01) < 0.01 and abs(run10k.outputs[1] - 0.99) < 0.01


def test_articles_other_training_numbers_come_from_updating_the_output_weights_first():
    """The article's 0.291027924 after one round and outputs 0.015912196 / 0.984065734 after 10000 rounds
    are what one gets when the hidden δs use the *updated* output weights (the text says: the old ones,
    which is the gradient, and what backprop.worked_step does). Shown here so the README can say so."""
    ex = backprop.ARTICLE
    kh, ko = backprop.kernels_from_weights(ex.weight_dict())
    x, t, (b1, b2) = np.array(ex.inputs), np.array(ex.targets), ex.biases

    def forward(kh, ko):
        h = backprop.sigmoid(x @ kh + b1)
        return h, backprop.sigmoid(h @ ko + b2)

    for n in range(10_000):
        h, o = forward(kh, ko)
        d_o = (o - t) * o * (1 - o)
        ko = ko - ex.lr * np.outer(h, d_o)
        kh = kh - ex.lr * np.outer(x, (ko @ d_o) * h * (1 - h))  # ko already updated
        if n == 0:
            o1 = forward(kh, ko)[1]
            assert_quoted(float(0.5 * ((t - o1) ** 2).sum()), "0.291027924", "E after one round")
            assert backprop.worked_train(ex, 1).errors[1] != pytest.approx(0.291027924, abs=1e-9)
    o = forward(kh, ko)[1]
    assert_quoted(float(o[0]), "0.015912196", "out_o1")
    assert_quoted(float(o[1]), "0.984065734", "out_o2")


def test_walkthrough_text(step):
    text = backprop.walkthrough(step, gradcheck.article_jax_grads())
    for needle in (
        "E_total = E_o1 + E_o2 = 0.298371109",
        "0.74136507 · 0.186815602 · 0.593269992",
        "= 0.35891648",
        "= 0.149780716",
        "δ_o1 · w5",
        "δ_o2 · w7",
        "jax.grad",
    ):
        assert needle in text
    table = text.split("Every weight")[1].splitlines()[2:]
    assert [row.split()[0] for row in table] == list(backprop.WEIGHT_NAMES)


def test_worked_train_rejects_negative_iterations():
    with pytest.raises(UserInputError, match="iterations"):
        backprop.worked_train(backprop.ARTICLE, -1)


# ----------------------------------------------------------------------------------------------------- the CLI


def backprop_cli(capsys, *argv):
    code, out, _ = run_cli(capsys, "backprop", *argv)
    assert code == 0
    return out


def test_cli_json_reproduces_the_article(capsys):
    record = json.loads(backprop_cli(capsys, "--json"))
    assert set(record) == {"total_error", "grads", "updated", "jax_grads", "max_abs_diff"}
    assert_quoted(record["total_error"], "0.298371109", "total_error")
    for name, quoted in ARTICLE_GRADS.items():
        assert_quoted(record["grads"][name], quoted, name)
    for name, quoted in ARTICLE_UPDATED.items():
        assert_quoted(record["updated"][name], quoted, name)
    assert set(record["grads"]) == set(record["jax_grads"]) == set(backprop.WEIGHT_NAMES)
    diffs = [abs(record["grads"][n] - record["jax_grads"][n]) for n in backprop.WEIGHT_NAMES]
    assert record["max_abs_diff"] == max(diffs) < 1e-12


def test_cli_json_with_iterations(capsys):
    record = json.loads(backprop_cli(capsys, "--json", "--iterations", "200"))
    run = backprop.worked_train(backprop.ARTICLE, 200)
    assert record["iterations"] == 200
    assert record["total_error_after"] == float(run.errors[-1])
    assert record["outputs_after"] == {"o1": run.outputs[0], "o2": run.outputs[1]}
    assert record["weights_after"] == run.weights
    assert_quoted(record["updated"]["w5"], "0.35891648", "updated w5 (one step)")
    assert record["total_error_after"] < 0.01 < record["total_error"]


def test_cli_text(capsys):
    out = backprop_cli(capsys, "--iterations", "20")
    assert "∂E_total/∂w5 = 0.74136507 · 0.186815602 · 0.593269992 = 0.0821670406" in out
    assert "w1⁺ = w1 − η · ∂E_total/∂w1 = 0.15 − 0.5 · 0.000438567734 = 0.149780716" in out
    assert "Training: 20 updates" in out
    rows = [
        line.split() for line in out.split("E_total\n")[-1].splitlines() if line.split() and line.split()[0].isdigit()
    ]
    errors = [float(r[1]) for r in rows]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 5, 10, 20] and errors == sorted(errors, reverse=True)


def test_cli_refuses_more_iterations_than_memory_holds_before_allocating(capsys):
    """Found by the flag fuzz: ``--iterations 10**12`` was numpy's MemoryError traceback (7.3 TiB of errors)."""
    code, out, err = run_cli(capsys, "backprop", "--iterations", 10**12)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(
        "mlpjax backprop: error: --iterations 1000000000000: the error after each update would "
        "need 7.3 TiB of memory but "
    ) and err.endswith("is available; choose fewer\n"), err


def test_cli_rejects_zero_iterations(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["backprop", "--iterations", "0"])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- the δ method


def sigmoid_net_error(kernels, biases, x, target):
    """jax reference for delta_backprop: sigmoid layers, E = ½ Σ (target − out)²."""
    a = x
    for k, b in zip(kernels, biases, strict=True):
        a = jax.nn.sigmoid(a @ k + b)
    return 0.5 * jnp.sum((target - a) ** 2)


@st.composite
def sigmoid_nets(draw):
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=5))
    seed = draw(st.integers(0, 2**31))
    bias_kind = draw(st.sampled_from(["none", "shared", "per-neuron"]))
    rng = np.random.default_rng(seed)
    kernels = [rng.normal(0, 1.5, (m, n)) for m, n in zip(sizes, sizes[1:], strict=False)]
    biases = {
        "none": None,
        "shared": [rng.normal() for _ in kernels],
        "per-neuron": [rng.normal(size=n) for n in sizes[1:]],
    }[bias_kind]
    return kernels, biases, rng.uniform(-1, 1, sizes[0]), rng.uniform(0, 1, sizes[-1])


@HYPOTHESIS
@given(sigmoid_nets())
def test_delta_method_matches_jax_grad(net):
    kernels, biases, x, target = net
    trace = backprop.delta_backprop(kernels, x, target, biases)
    jb = [0.0] * len(kernels) if biases is None else biases
    with gradcheck.x64():
        value, (gk, gb) = jax.value_and_grad(sigmoid_net_error, argnums=(0, 1))(
            [jnp.asarray(k) for k in kernels],
            [jnp.asarray(b, jnp.float64) for b in jb],
            jnp.asarray(x),
            jnp.asarray(target),
        )
    assert trace.total_error == pytest.approx(float(value), rel=1e-13, abs=1e-15)
    gradcheck.assert_grads_close(
        {f"layer_{l}": k for l, k in enumerate(trace.kernel_grads)},
        {f"layer_{l}": np.asarray(k) for l, k in enumerate(gk)},
    )
    if biases is not None:
        gradcheck.assert_grads_close(
            {f"b{l}": b for l, b in enumerate(trace.bias_grads)}, {f"b{l}": np.asarray(b) for l, b in enumerate(gb)}
        )


def test_delta_method_on_the_figures_3_2_1_network():
    rng = np.random.default_rng(0)
    kernels = [rng.normal(size=(2, 3)), rng.normal(size=(3, 2)), rng.normal(size=(2, 1))]
    x, z = np.array([0.3, -0.7]), np.array([0.9])
    trace = backprop.delta_backprop(kernels, x, z)
    names = backprop.figure_names(trace)
    assert [k for k in names if k.startswith("δ")] == [f"δ{n}" for n in range(1, 7)]
    assert {"w(x1)1", "w(x2)3", "w14", "w35", "w46", "w56"} <= set(names) and len(names) == 6 + 6 + 6 + 2
    y = trace.outs[-1][0]
    assert names["δ6"] == pytest.approx(-(z[0] - y) * y * (1 - y), rel=1e-15)  # the output's δ: −(z − y) df/de
    # Neuron 4's error comes back from neuron 6 alone; neuron 1's from neurons 4 and 5 (weights w14, w15).
    y4 = trace.outs[2][0]
    assert names["δ4"] == pytest.approx(kernels[2][0, 0] * names["δ6"] * y4 * (1 - y4), rel=1e-15)
    y1 = trace.outs[1][0]
    assert names["δ1"] == pytest.approx(
        (kernels[1][0, 0] * names["δ4"] + kernels[1][0, 1] * names["δ5"]) * y1 * (1 - y1), rel=1e-15
    )
    assert names["w(x2)1"] == pytest.approx(x[1] * names["δ1"], rel=1e-15)
    assert names["w46"] == pytest.approx(y4 * names["δ6"], rel=1e-15)
    with gradcheck.x64():
        gk = jax.grad(sigmoid_net_error)([jnp.asarray(k) for k in kernels], [0.0] * 3, jnp.asarray(x), jnp.asarray(z))
    assert names["w14"] == pytest.approx(float(gk[1][0, 0]), rel=1e-12)
    assert names["w(x1)3"] == pytest.approx(float(gk[0][0, 2]), rel=1e-12)


def test_delta_method_rejects_mismatched_shapes():
    with pytest.raises(UserInputError, match="kernel 2"):
        backprop.delta_backprop([np.ones((2, 3)), np.ones((2, 1))], [0.1, 0.2], [1.0])
    with pytest.raises(UserInputError, match="target"):
        backprop.delta_backprop([np.ones((2, 3))], [0.1, 0.2], [1.0])
    with pytest.raises(UserInputError, match="biases"):
        backprop.delta_backprop([np.ones((2, 3))], [0.1, 0.2], [1.0, 0, 0], biases=[0.1, 0.2])
    with pytest.raises(UserInputError, match="bias 1"):
        backprop.delta_backprop([np.ones((2, 3))], [0.1, 0.2], [1.0, 0, 0], biases=[np.zeros(2)])


# -------------------------------------------------------------------------------------- the library's MLP


@st.composite
def mlp_cases(draw):
    # Sizes come from small sets so that jax's per-shape compilations are shared between examples.
    hidden = tuple(draw(st.lists(st.sampled_from([1, 4]), min_size=0, max_size=3)))
    config = model.ModelConfig(
        input_dim=draw(st.sampled_from([2, 5])),
        hidden=hidden,
        activation=draw(st.sampled_from(["relu", "sigmoid", "tanh", "step"])),
        dropout=draw(st.sampled_from([0.0, 0.2, 0.5])),
        num_classes=draw(st.sampled_from([2, 3])),
    )
    batch_size = draw(st.sampled_from([1, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    dims = [config.input_dim, *hidden, config.num_classes]
    params = {
        name: {"kernel": rng.normal(0, 1, (m, n)), "bias": rng.normal(0, 0.5, n)}
        for name, m, n in zip([f"hidden_{i}" for i in range(len(hidden))] + ["output"], dims, dims[1:], strict=False)
    }
    batch = {
        "image": rng.uniform(0, 1, (batch_size, config.input_dim)),
        "label": rng.integers(0, config.num_classes, batch_size),
    }
    weight = draw(st.sampled_from([None, "mask", "float"]))
    if weight == "mask":
        batch["weight"] = (rng.uniform(size=batch_size) < 0.7).astype(np.float64)
    elif weight == "float":
        batch["weight"] = rng.uniform(0, 2, batch_size)
    return {
        "config": config,
        "params": params,
        "batch": batch,
        "seed": draw(st.integers(0, 1000)),
        "loss_name": draw(st.sampled_from(sorted(losses.LOSSES))),
        "train": draw(st.booleans()),
    }


def jax_loss_and_grads(case):
    """Inside x64: jax.value_and_grad of the library's pure loss, and the dropout masks it used."""
    config, rng = case["config"], jax.random.key(case["seed"])
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), case["params"])
    batch = {k: jnp.asarray(v) for k, v in case["batch"].items()}
    (value, _), grads = jax.value_and_grad(losses.loss, has_aux=True)(
        params, batch, rng, model_config=config, loss_name=case["loss_name"], train=case["train"]
    )
    dropout = case["train"] and config.dropout > 0
    masks = model.dropout_masks(rng, config, len(case["batch"]["label"])) if dropout else None
    return float(value), jax.tree_util.tree_map(np.asarray, grads), masks


def check_mlp(case, corrupt=None, drop_masks=False):
    """The check of every parameter; ``corrupt`` mutates the manual gradient, to show the check can fail."""
    with gradcheck.x64():
        value, reference, masks = jax_loss_and_grads(case)
        manual_value, manual = backprop.loss_and_grads(
            case["params"],
            case["batch"],
            model_config=case["config"],
            loss_name=case["loss_name"],
            masks=None if drop_masks else masks,
        )
    assert jnp.asarray(1.0).dtype == (jnp.float64 if X64_AT_IMPORT else jnp.float32), "x64 leaked"
    if corrupt is not None:
        corrupt(manual)
    check = gradcheck.assert_grads_close(manual, reference, rtol=1e-9, atol=1e-12)
    assert manual_value == pytest.approx(value, rel=1e-12, abs=1e-14)
    return check


@HYPOTHESIS
@given(mlp_cases())
def test_mlp_manual_backward_matches_jax_grad(case):
    check_mlp(case)


@pytest.mark.parametrize("activation, loss_name", [("relu", "categorical_crossentropy"), ("sigmoid", "mse")])
def test_mlp_with_dropout_on_model_init_params(loss_name, activation):
    """The params exactly as model.init makes them (layout and all), biases moved off zero, dropout on."""
    config = model.ModelConfig(input_dim=5, hidden=(4, 4), activation=activation, dropout=0.5, num_classes=3)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), model.init(jax.random.key(1), config))
    rng = np.random.default_rng(2)
    for layer in params.values():
        layer["bias"] = layer["bias"] + rng.normal(0, 0.3, layer["bias"].shape)
    batch = {"image": rng.uniform(0, 1, (4, 5)), "label": rng.integers(0, 3, 4)}
    case = {"config": config, "params": params, "batch": batch, "seed": 3, "loss_name": loss_name, "train": True}
    check = check_mlp(case)
    assert sorted(check.abs_diffs) == [
        f"{layer}/{p}" for layer in ("hidden_0", "hidden_1", "output") for p in ("bias", "kernel")
    ]
    with gradcheck.x64():
        masks = model.dropout_masks(jax.random.key(3), config, 4)
    assert any(not np.all(m) for m in masks), "some units are dropped"
    # Leaving the masks out (inference-mode backward against the train-mode loss) must be caught.
    with pytest.raises(AssertionError, match="differ"):
        check_mlp(case, drop_masks=True)


# ------------------------------------------------------------------------------------------- the checker


def small_case(loss_name="categorical_crossentropy"):
    config = model.ModelConfig(input_dim=2, hidden=(4, 4), activation="tanh", dropout=0.0, num_classes=3)
    rng = np.random.default_rng(5)
    dims = [2, 4, 4, 3]
    params = {
        name: {"kernel": rng.normal(size=(m, n)), "bias": rng.normal(size=n)}
        for name, m, n in zip(["hidden_0", "hidden_1", "output"], dims, dims[1:], strict=False)
    }
    batch = {"image": rng.uniform(size=(4, 2)), "label": rng.integers(0, 3, 4)}
    return {"config": config, "params": params, "batch": batch, "seed": 0, "loss_name": loss_name, "train": False}


def _transpose(g):
    g["hidden_1"]["kernel"] = g["hidden_1"]["kernel"].T.copy()


def _flip_sign(g):
    g["output"]["bias"] = -g["output"]["bias"]


def _bias_factor(g):
    g["hidden_0"]["bias"] = g["hidden_0"]["bias"] * 1.001


def _input_kernel_transposed(g):  # (2, 4) -> (4, 2): a shape mismatch
    g["hidden_0"]["kernel"] = g["hidden_0"]["kernel"].T.copy()


def _missing(g):
    del g["output"]["bias"]


@pytest.mark.parametrize(
    "corrupt, worst",
    [
        (_transpose, "hidden_1/kernel"),
        (_flip_sign, "output/bias"),
        (_bias_factor, "hidden_0/bias"),
        (_input_kernel_transposed, "hidden_0/kernel"),
        (_missing, "output/bias"),
    ],
)
def test_checker_catches_a_wrong_gradient(corrupt, worst):
    case = small_case()
    check_mlp(case)  # the right gradient passes
    with pytest.raises(AssertionError, match=f"worst parameter '{worst}'"):
        check_mlp(case, corrupt=corrupt)


def test_compare_grads_reports():
    ref = {"a": {"kernel": np.ones((2, 2)), "bias": np.zeros(2)}}
    same = gradcheck.compare_grads(ref, ref)
    assert same.ok and same.max_abs_diff == 0.0
    off = {"a": {"kernel": np.ones((2, 2)), "bias": np.array([0.0, 1e-6])}}
    check = gradcheck.compare_grads(off, ref)
    assert not check.ok and check.worst == "a/bias" and check.max_abs_diff == pytest.approx(1e-6)
    assert gradcheck.compare_grads(off, ref, atol=1e-5).ok
    extra = {"a": {**ref["a"], "scale": np.ones(2)}}
    assert not gradcheck.compare_grads(extra, ref).ok
    assert "not a parameter" in gradcheck.compare_grads(extra, ref).message()
    nan = {"a": {"kernel": np.full((2, 2), np.nan), "bias": np.zeros(2)}}
    assert not gradcheck.compare_grads(nan, ref).ok


def test_output_gradient_rejects_unknown_loss():
    with pytest.raises(UserInputError, match="unknown loss 'nope'"):
        backprop.output_gradient(np.zeros((1, 2)), np.eye(2)[:1], "nope")


def test_mlp_forward_needs_one_mask_per_hidden_layer():
    case = small_case()
    with pytest.raises(UserInputError, match="one dropout mask per hidden layer"):
        backprop.mlp_forward(
            case["params"], case["batch"]["image"], model_config=case["config"], masks=[np.ones((4, 4), bool)]
        )


def test_manual_logits_match_model_apply():
    case = small_case()
    logits, _ = backprop.mlp_forward(case["params"], case["batch"]["image"], model_config=case["config"])
    with gradcheck.x64():
        expected = model.apply(case["params"], jnp.asarray(case["batch"]["image"]), model_config=case["config"])
        assert expected.dtype == jnp.float64
    np.testing.assert_allclose(logits, np.asarray(expected), rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------------------------------- float64 is local


@pytest.mark.skipif(
    os.environ.get("JAX_ENABLE_X64", "").lower() in ("1", "true"), reason="JAX_ENABLE_X64 is set for the whole process"
)
def test_x64_does_not_leak():
    """Every x64 block above was undone on exit: other test files in this process still get float32."""
    assert not jax.config.jax_enable_x64
    assert jnp.asarray(1.0).dtype == jnp.float32
    with gradcheck.x64():
        assert jnp.asarray(1.0).dtype == jnp.float64
    assert jnp.asarray(1.0).dtype == jnp.float32
