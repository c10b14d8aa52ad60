"""mlpjax basics: each of the tutorial's small worked examples, recomputed here independently (numpy, or jax
written out neuron by neuron), the two numeric slips of the tutorial, and the command's text and JSON."""

from __future__ import annotations

import gzip
import json
import math
import struct
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlpjax import cli, data
from mlpjax.core import model
from mlpjax.errors import UserInputError
from mlpjax.teaching import basics, gradcheck
from mlpjax.training.rows import batch_indices


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)


@pytest.fixture
def record():
    return basics.compute(data_dir=None)


def np_sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.asarray(v, np.float64)))


# ------------------------------------------------------------------------------------------- 1. activations


def test_activations_of_the_tutorial_hidden_values():
    a = basics.activations()
    h = np.array([1.0, -2.0, 3.0, -4.0, 7.0])
    assert a["hidden"] == h.tolist()
    assert a["step"] == [1, 0, 1, 0, 1] == np.where(h > 0, 1.0, 0.0).tolist()  # the tutorial's
    assert a["relu"] == [1, 0, 3, 0, 7] == np.maximum(h, 0).tolist()  # the tutorial's
    np.testing.assert_allclose(a["sigmoid"], np_sigmoid(h), rtol=1e-6)
    assert a["sigmoid"][2] == pytest.approx(math.e**3 / (1 + math.e**3), rel=1e-6)


# --------------------------------------------------------------------------------------- 2. linear collapse


def test_two_linear_layers_are_one_and_not_with_relu_between():
    lc = basics.linear_collapse(seed=0)
    w1, b1, w2, b2, x = (np.array(lc[k], np.float64) for k in ("W1", "b1", "W2", "b2", "x"))
    assert w1.shape == (4, 3) and w2.shape == (2, 4) and x.shape == (4, 3)
    np.testing.assert_allclose(lc["W"], w2 @ w1, atol=1e-5)
    np.testing.assert_allclose(lc["b"], w2 @ b1 + b2, atol=1e-5)
    two = (x @ w1.T + b1) @ w2.T + b2
    one = x @ (w2 @ w1).T + (w2 @ b1 + b2)
    assert np.abs(two - one).max() < 1e-12  # exact algebra, in float64
    np.testing.assert_allclose(lc["two_layers"], two, atol=1e-5)
    np.testing.assert_allclose(lc["one_layer"], one, atol=1e-5)
    assert 0 <= lc["max_abs_diff"] < 1e-5  # float32 rounding only
    assert lc["max_abs_diff"] == pytest.approx(np.abs(np.array(lc["two_layers"]) - lc["one_layer"]).max())
    relu = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    np.testing.assert_allclose(lc["relu_two_layers"], relu, atol=1e-5)
    assert lc["relu_max_abs_diff"] == pytest.approx(np.abs(relu - one).max(), rel=1e-5)
    assert lc["relu_max_abs_diff"] > 0.1
    # g(a) + g(b) − g(a + b) − g(0) is 0 for any affine g: not only W2·W1 fails with ReLU, every W, b does
    gap = lambda g: np.abs(g(x[0]) + g(x[1]) - g(x[0] + x[1]) - g(np.zeros(3))).max()
    relu_net = lambda v: np.maximum(v @ w1.T + b1, 0) @ w2.T + b2
    assert lc["affine_gap"] < 1e-5 and gap(lambda v: v @ w1.T @ w2.T) < 1e-12
    assert lc["relu_affine_gap"] == pytest.approx(gap(relu_net), rel=1e-4, abs=1e-5) and lc["relu_affine_gap"] > 0.1


def test_linear_collapse_weights_come_from_the_seed():
    assert basics.linear_collapse(seed=3) == basics.linear_collapse(seed=3)
    assert basics.linear_collapse(seed=3)["W1"] != basics.linear_collapse(seed=4)["W1"]


# ------------------------------------------------------------------------------- 3-4. softmax, cross-entropy


def test_softmax_scores_give_the_tutorial_output():
    s = basics.softmax_example()
    z = np.array(s["scores"])
    assert z[-1] == 0 and list(z) == sorted(z, reverse=True)
    np.testing.assert_allclose(np.exp(z), [45, 2.5, 1.5, 1], rtol=1e-12)  # p / min p
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(p, [0.90, 0.05, 0.03, 0.02], rtol=1e-12)
    np.testing.assert_allclose(s["probabilities"], p, atol=1e-7)
    assert s["truth"] == [1, 0, 0, 0] and s["predicted_class"] == s["true_class"] == 0


def test_cross_entropy_is_natural_log_and_the_tutorial_used_log10():
    ce = basics.cross_entropy_example()
    assert ce["p_true"] == 0.9
    assert ce["natural_log"] == pytest.approx(-np.log(0.9), rel=1e-15)
    assert ce["loss"] == pytest.approx(-np.log(0.9), rel=1e-6)  # mlpjax.core.losses, float32
    assert round(ce["natural_log"], 3) == 0.105
    # the tutorial's "−log 0.9 = 0.046" is the base-10 logarithm
    assert ce["tutorial"] == 0.046 == round(-np.log10(0.9), 3) == round(ce["log10"], 3)
    assert ce["natural_log"] / ce["log10"] == pytest.approx(np.log(10), rel=1e-12)


def test_probabilities_are_checked():
    with pytest.raises(UserInputError, match="sum to 1"):
        basics.softmax_example([0.5, 0.6], [1, 0])
    with pytest.raises(UserInputError, match="truth"):
        basics.cross_entropy_example([0.5, 0.5], [1, 0, 0])


# ---------------------------------------------------------------------------------------------- 5. dropout


def test_dropout_in_training_and_at_test_time():
    d = basics.dropout_example(rate=0.2, seed=0)
    x = np.array([1.0, 0, 3, 0, 7])
    keep = np.asarray(model.dropout_masks(jax.random.PRNGKey(0), model.ModelConfig(5, (5,), dropout=0.2), 1)[0][0])
    assert d["keep"] == keep.tolist() and d["x"] == x.tolist()
    np.testing.assert_allclose(d["train"], np.where(keep, x / 0.8, 0.0), rtol=1e-6)
    assert d["scale"] == pytest.approx(1.25) and d["test"] == x.tolist()
    # E[kept · x / (1 − rate)] = x: the mean over the draws is within 5 standard errors of x
    se = x * math.sqrt(0.2 / 0.8) / math.sqrt(d["draws"])
    assert np.all(np.abs(np.array(d["mean_train"]) - x) <= 5 * se + 1e-6)


def test_dropout_mask_depends_on_the_seed_and_rate_zero_keeps_everything():
    masks = {tuple(basics.dropout_example(x=np.ones(50), seed=s)["keep"]) for s in range(3)}
    assert len(masks) == 3
    d = basics.dropout_example(rate=0.0)
    assert all(d["keep"]) and d["train"] == d["x"]
    with pytest.raises(UserInputError, match="rate"):
        basics.dropout_example(rate=1.0)


# ------------------------------------------------------------------------------------ 6-7. one-hot, steps


def test_to_categorical_of_label_5():
    assert basics.one_hot_example(5, 10)["one_hot"] == np.eye(10)[5].tolist()
    with pytest.raises(UserInputError, match="label 10"):
        basics.one_hot_example(10, 10)


def test_steps_per_epoch_is_469_not_128():
    st = basics.steps_example()
    assert st["steps_per_epoch"] == 469 and st["total_steps"] == 4690 and st["last_batch"] == 96
    assert len(range(0, 60000, 128)) == 469 and 468 * 128 + 96 == 60000
    idx, weight = batch_indices(60000, 128)  # mlpjax's own epoch
    assert idx.shape[0] == st["steps_per_epoch"] and int(weight[-1].sum()) == st["last_batch"]
    assert (st["tutorial_steps_per_epoch"], st["tutorial_total_steps"]) == (128, 1280)


@pytest.mark.parametrize("n, batch", [(100, 32), (64, 64), (1, 128)])
def test_steps_for_other_sizes(n, batch):
    st = basics.steps_example(n, batch, 3)
    batches = [range(n)[i : i + batch] for i in range(0, n, batch)]
    assert st["steps_per_epoch"] == len(batches) and st["last_batch"] == len(batches[-1])
    assert st["total_steps"] == 3 * len(batches)
    with pytest.raises(UserInputError, match="batch_size"):
        basics.steps_example(n, 0)


# --------------------------------------------------------------------------------------------- 8. shapes


def test_shapes_from_the_headers_of_a_folder(idx_folder):
    sh = basics.mnist_shapes(idx_folder)
    assert sh["read"] and sh["source"] == str(idx_folder)
    assert (sh["x_train"], sh["y_train"], sh["x_test"], sh["y_test"]) == ([50, 28, 28], [50], [20, 28, 28], [20])


def test_only_the_header_is_read(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 60000, 28, 28)))  # no pixels
    assert basics.idx_shape(path) == [60000, 28, 28]
    with pytest.raises(UserInputError):
        data.read_idx(path)  # reading the whole file would have failed


def test_bad_idx_files_and_folders(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x1f\x00\x08\x03")
    with pytest.raises(UserInputError, match="not an IDX file"):
        basics.idx_shape(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(UserInputError, match="truncated"):
        basics.idx_shape(tmp_path / "short")
    with pytest.raises(UserInputError, match="does not exist"):
        basics.mnist_shapes(tmp_path / "nowhere")
    with pytest.raises(UserInputError, match="missing"):
        basics.mnist_shapes(tmp_path)


def test_shapes_not_read_without_a_folder_and_from_the_environment(monkeypatch, idx_folder):
    sh = basics.mnist_shapes(None)
    assert not sh["read"] and "x_train" not in sh
    assert sh["tutorial"] == {"x_train": [60000, 28, 28], "y_train": [60000]}
    monkeypatch.setenv(data.DATA_DIR_ENV, str(idx_folder))
    assert basics.mnist_shapes(None)["x_test"] == [20, 28, 28]


def test_shapes_of_the_real_mnist(mnist_path):
    sh = basics.mnist_shapes(mnist_path)
    assert sh["x_train"] == list(sh["tutorial"]["x_train"]) == [60000, 28, 28]
    assert sh["y_train"] == [60000] and sh["x_test"] == [10000, 28, 28] and sh["y_test"] == [10000]


# -------------------------------------------------------------------------------------- 9. the δ method


def figures_error(w, x1, x2, z):
    """The 3-2-1 network of the figures neuron by neuron, by figure names, in jax."""
    f = jax.nn.sigmoid
    y1, y2, y3 = (f(w[f"w(x1){n}"] * x1 + w[f"w(x2){n}"] * x2) for n in (1, 2, 3))
    y4, y5 = (f(w[f"w1{n}"] * y1 + w[f"w2{n}"] * y2 + w[f"w3{n}"] * y3) for n in (4, 5))
    y6 = f(w["w46"] * y4 + w["w56"] * y5)
    return 0.5 * (z - y6) ** 2


def test_delta_method_against_jax_grad_and_by_hand():
    d = basics.delta_method()
    w, (x1, x2), z, lr = d["weights"], d["x"], d["target"][0], d["lr"]
    assert len(w) == 14 and lr == 0.5
    with gradcheck.x64():
        wj = {n: jnp.asarray(v, jnp.float64) for n, v in w.items()}
        error, grads = jax.value_and_grad(figures_error)(wj, x1, x2, z)
        grads = {n: float(g) for n, g in grads.items()}
    assert d["error"] == pytest.approx(float(error), rel=1e-14)
    for n in w:
        assert d["grads"][n] == pytest.approx(grads[n], rel=1e-12, abs=1e-15), n
        assert d["jax_grads"][n] == pytest.approx(grads[n], rel=1e-12, abs=1e-15), n
        assert d["updated"][n] == pytest.approx(w[n] - lr * grads[n], rel=1e-14)
    assert d["agrees"] and d["max_abs_diff"] < 1e-12
    # δn = ∂E/∂en by hand, from a numpy forward pass
    y = [None, *(np_sigmoid(w[f"w(x1){n}"] * x1 + w[f"w(x2){n}"] * x2) for n in (1, 2, 3))]
    y += [np_sigmoid(sum(w[f"w{m}{n}"] * y[m] for m in (1, 2, 3))) for n in (4, 5)]
    y.append(np_sigmoid(w["w46"] * y[4] + w["w56"] * y[5]))
    np.testing.assert_allclose(d["y"], y[1:], rtol=1e-14)
    dl = {6: -(z - y[6]) * y[6] * (1 - y[6])}
    dl |= {n: w[f"w{n}6"] * dl[6] * y[n] * (1 - y[n]) for n in (4, 5)}
    dl |= {n: (w[f"w{n}4"] * dl[4] + w[f"w{n}5"] * dl[5]) * y[n] * (1 - y[n]) for n in (1, 2, 3)}
    assert list(d["deltas"]) == [f"δ{n}" for n in range(1, 7)]
    for n in range(1, 7):
        assert d["deltas"][f"δ{n}"] == pytest.approx(dl[n], rel=1e-13)
    assert d["grads"]["w14"] == pytest.approx(dl[4] * y[1], rel=1e-13)
    assert d["grads"]["w(x2)3"] == pytest.approx(dl[3] * x2, rel=1e-13)


def test_the_figures_literal_rule_differs_below_the_output_layer():
    d = basics.delta_method()
    w, y, z, lr = d["weights"], [None, *d["y"]], d["target"][0], d["lr"]
    fig = {6: z - y[6]}
    fig |= {n: w[f"w{n}6"] * fig[6] for n in (4, 5)}  # no f'(e6): the figures' δ4 = w46·δ
    fig |= {n: w[f"w{n}4"] * fig[4] + w[f"w{n}5"] * fig[5] for n in (1, 2, 3)}
    np.testing.assert_allclose(d["figure_deltas"], [fig[n] for n in range(1, 7)], rtol=1e-13)
    figure_update = lambda m, n: w[f"w{m}{n}"] + lr * fig[n] * y[n] * (1 - y[n]) * y[m]
    for m, n in ((4, 6), (5, 6)):  # the output layer: the same as gradient descent
        assert d["figure_updated"][f"w{m}{n}"] == pytest.approx(d["updated"][f"w{m}{n}"], rel=1e-14)
    assert d["figure_updated"]["w14"] == pytest.approx(figure_update(1, 4), rel=1e-14)
    assert abs(d["figure_updated"]["w14"] - d["updated"]["w14"]) > 1e-3
    assert d["figure_updated"]["w(x1)1"] == pytest.approx(w["w(x1)1"] + lr * fig[1] * y[1] * (1 - y[1]) * d["x"][0])


def test_delta_method_takes_one_output():
    with pytest.raises(UserInputError, match="one output"):
        basics.delta_method(kernels=[np.ones((2, 2))], x=[0.1, 0.2], target=[0.5, 0.5])


def test_delta_method_names_are_the_figures():
    from mlpjax.teaching import backprop

    d = basics.delta_method()
    trace = backprop.delta_backprop(
        [np.asarray(k) for k in basics.FIGURE_KERNELS], basics.FIGURE_X, basics.FIGURE_TARGET
    )
    assert set(d["grads"]) | set(d["deltas"]) == set(backprop.figure_names(trace))
    assert d["weights"]["w15"] == basics.FIGURE_KERNELS[1][0][1]
    assert d["weights"]["w(x2)3"] == basics.FIGURE_KERNELS[0][1][2]


# ------------------------------------------------------------------------------------------------ the CLI


def run(capsys, *argv):
    code = cli.main(["basics", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_text(capsys, record):
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    assert out == basics.render(record) + "\n"
    starts = [out.index(f"\n{k}. " if k > 1 else f"{k}. ") for k in range(1, 10)]
    assert starts == sorted(starts)  # the tutorial's order
    for text in (
        "(1, 0, 1, 0, 1)  (as the tutorial)",
        "(1, 0, 3, 0, 7)  (as the tutorial)",
        "−ln 0.9 = 0.105360516",
        "tutorial: −log 0.9 = 0.046, which is −log10 0.9 = 0.0457575",
        "⌈60000/128⌉ = ⌈468.75⌉ = 469 steps per epoch",
        "4690 for 10 epochs",
        "tutorial: 128 steps per epoch, 1280 for 10 epochs",
        "label 5, 10 classes",
        "(0, 0, 0, 0, 0, 1, 0, 0, 0, 0)",
        "not read (no MNIST folder given)",
        "δ method and jax.grad agree",
        "(0.731059, 0.119203, 0.952574, 0.0179862, 0.999089)",
    ):
        assert text in out, text
    d = record["delta_method"]
    assert "δ6 = −(z − y6)·y6(1 − y6)" in out and f"{d['deltas']['δ6']:.9g}" in out
    assert f"{d['updated']['w14']:.12f}" in out and f"{d['figure_updated']['w14']:.9f}" in out


def test_cli_json(capsys, record):
    code, out, _ = run(capsys, "--json")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(record))
    got = json.loads(out)
    assert got["steps"]["steps_per_epoch"] == 469 and got["cross_entropy"]["tutorial"] == 0.046
    assert got["delta_method"]["deltas"]["δ6"] == record["delta_method"]["deltas"]["δ6"]


def test_cli_data_dir(capsys, idx_folder, tmp_path):
    code, out, _ = run(capsys, "--data-dir", str(idx_folder))
    assert code == 0 and f"IDX headers in {idx_folder}" in out and "x_train (50, 28, 28), y_train (50,)" in out
    assert "(tutorial: x_train (60000, 28, 28), y_train (60000,))" in out
    code, out, err = run(capsys, "--data-dir", str(tmp_path / "nowhere"), "--json")
    assert code == 2 and out == "" and err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err


def test_docs_page_shows_the_current_output(record):
    page = (Path(__file__).resolve().parents[2] / "docs" / "basics.md").read_text()
    sections = basics.render(record).split("\n\n")
    assert len(sections) == 9
    for section in sections:  # section 8 as printed without a folder; the page also shows it read from MNIST
        assert f"```\n{section}\n```" in page, section.splitlines()[0]


def test_cli_real_mnist(capsys, mnist_path):
    code, out, _ = run(capsys, "--data-dir", str(mnist_path))
    assert code == 0
    assert (
        "x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28), y_test (10000,)  (as the tutorial)" in out
    )
