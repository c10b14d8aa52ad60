"""Experiments and plots: the figures draw; every experiment's ``--quick`` form runs from the command line
(offline, on scikit-learn's digits) and writes results whose numbers make sense; a run is reproducible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_png, fill_disk

from mlpjax import cli
from mlpjax.core import optimizers
from mlpjax.errors import UserInputError
from mlpjax.experiments import common, discover, drift, run_experiment

# The smoke test only checks behaviour, not speed: compile at XLA's lowest optimisation level, and let identical
# programs (the default model recurs in most experiments) come from a persistent compilation cache.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def quick_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLPJAX_DATA_DIR"}  # no MNIST: the digits fallback
    env.update(
        XLA_FLAGS=f"{env.get('XLA_FLAGS', '')} {FAST_XLA}".strip(),
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(cache),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    )
    return env


def run_quick(args: list[str], out: Path, cache: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "mlpjax.cli", "experiment", *args, "--quick", "--out", str(out)],
        env=quick_env(cache),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# --- experiments -------------------------------------------------------------------------------------------


def test_unknown_experiment_is_one_line_and_exit_2(capsys, tmp_path):
    assert cli.main(["experiment", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nope'" in err and "dropout" in err and "Traceback" not in err
    assert not (tmp_path / "nope").exists()


def test_out_naming_a_file_is_one_line_and_exit_2(capsys, tmp_path):
    """Issue 13, defect 12: ``experiment NAME --out FILE`` was a FileExistsError traceback."""
    (tmp_path / "afile").write_text("mine")
    for name, out in (("samples", "afile"), ("all", "afile/sub")):
        assert cli.main(["experiment", name, "--quick", "--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"--out {tmp_path / out}: " in err and (
            "is a file, expected a folder" in err
            if out == "afile"
            else f"{tmp_path / 'afile'} is a file, not a folder" in err
        ), err
    assert (tmp_path / "afile").read_text() == "mine"
    with pytest.raises(UserInputError, match=r"afile/samples: cannot create the folder: .*afile is a file, not a"):
        run_experiment("samples", tmp_path / "afile", quick=True)  # from Python too, before any training


@pytest.mark.parametrize("name, count", [("validation", 3), ("epochs", 5), ("all", 5)])
def test_a_seed_whose_followers_overflow_is_refused_before_anything_trains(capsys, tmp_path, monkeypatch, name, count):
    """Found by the flag fuzz: ``experiment validation --seed 2**63-1`` trained seed 2**63-1, then refused the
    next one; ``epochs`` refused a seed of 2**63 that was never given."""
    from mlpjax.training import train

    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained"))
    assert cli.main(["experiment", name, "--quick", "--seed", str(2**63 - 1), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"mlpjax experiment: error: --seed must be at most 2**63 - {count}, as it and the {count - 1} "
        f"seeds after it are used; got {2**63 - 1}\n"
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserInputError, match="seed must be at most"):
        run_experiment(name if name != "all" else "epochs", tmp_path / "out", quick=True, seed=2**63 - 1)
    assert not (tmp_path / "out").exists()


def test_samples_builds_the_features_of_the_images_it_shows_only(monkeypatch, tmp_path):
    """Found by the flag fuzz (a MemoryError under its 3 GiB limit): samples built x_train and x_test, 220 MB of
    float32 for MNIST, to draw 20 images and report shapes and the pixel range."""
    from mlpjax import data

    for name in ("x_train", "x_test"):
        monkeypatch.setattr(data.Dataset, name, property(lambda self: pytest.fail("built all the features")))
    record = run_experiment("samples", tmp_path, quick=True, log=None)
    assert record["results"]["dtypes"]["x"] == "float32" and len(record["results"]["first_labels"]) == 20


def test_an_experiment_run_again_keeps_the_earlier_results_unless_overwrite_is_given(tmp_path, capsys):
    assert cli.main(["experiment", "quadrants", "--quick", "--out", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "quadrants").iterdir()}
    capsys.readouterr()
    assert cli.main(["experiment", "quadrants", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "holds earlier results" in err and "--overwrite" in err, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "quadrants").iterdir()} == before
    with pytest.raises(UserInputError, match="give overwrite, or another output folder"):
        run_experiment("quadrants", tmp_path, quick=True, log=None)  # the library names its parameter
    assert cli.main(["experiment", "quadrants", "--quick", "--out", str(tmp_path), "--overwrite"]) == 0


def test_quick_data_falls_back_to_digits_without_a_data_folder(monkeypatch):
    monkeypatch.delenv("MLPJAX_DATA_DIR", raising=False)
    ds = common.load_data(common.DataChoice(), quick=True)
    assert ds.name == "digits" and ds.x_train.shape[1] == 64


def test_an_experiment_trains_on_the_users_file_whole(tmp_path, capsys):
    """--dataset FILE: the experiment trains on the file (all its rows, quick or not), not on MNIST or digits."""
    from mlpjax import data

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    np.savez(tmp_path / "three.npz", x=x, y=y)
    argv = ["experiment", "dropout", "--quick", "--dataset", str(tmp_path / "three.npz"), "--out", str(tmp_path)]
    assert cli.main(argv) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "dropout" / "results.json").read_text())
    ds = data.load_dataset(tmp_path / "three.npz")
    assert record["dataset"] == common.jsonable(common.describe(ds)), record["dataset"]
    assert record["dataset"]["x_train"] == [72, 5] and record["dataset"]["num_classes"] == 3


@pytest.mark.parametrize("name", ["quadrants", "tabular"])
def test_a_dataset_for_an_experiment_with_data_of_its_own_is_one_line(tmp_path, capsys, name):
    code = cli.main(["experiment", name, "--quick", "--dataset", "iris", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: the {name} experiment trains on its own data only; --dataset iris applies to the others" in err
    assert not (tmp_path / name).exists()
    with pytest.raises(UserInputError, match=f"the {name} experiment trains on its own data only"):
        run_experiment(name, tmp_path, quick=True, source=common.DataChoice("iris"), log=None)


@pytest.mark.mnist
def test_quick_data_is_a_slice_of_mnist_with_a_data_folder(mnist_path, mnist):
    ds = common.load_data(common.DataChoice(data_dir=str(mnist_path)), quick=True)
    n_train, n_test = common.QUICK_MNIST
    assert ds.x_train.shape == (n_train, 784) and ds.x_test.shape == (n_test, 784)
    np.testing.assert_array_equal(ds.y_train, mnist.y_train[:n_train])
    np.testing.assert_array_equal(ds.x_test, mnist.x_test[:n_test])


@pytest.mark.mnist
def test_samples_on_real_mnist(mnist_path, mnist, tmp_path):
    record = run_experiment("samples", tmp_path, source=common.DataChoice(data_dir=mnist_path), log=None)
    r = record["results"]
    assert r["shapes"] == {"x_train": [60000, 784], "y_train": [60000], "x_test": [10000, 784], "y_test": [10000]}
    assert r["image_shape"] == [28, 28] and r["pixel_range"] == [0.0, 1.0]
    assert r["first_labels"] == mnist.y_train[:20].tolist()
    assert sum(r["class_counts"]["train"]) == 60000
    assert_png(tmp_path / "samples" / "samples.png", (600, 600))


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> dict[str, dict]:
    """Every experiment's --quick form, run once through the command line (``experiment all``)."""
    root = tmp_path_factory.mktemp("quick")
    proc = run_quick(["all", "--seed", "0"], root / "results", root / "jax-cache")
    assert "X (4, 2)  H (4, 50)  Y (4, 4)" in proc.stdout and "(2, 2) -> quadrant I" in proc.stdout
    return {
        name: json.loads((root / "results" / name / "results.json").read_text())
        | {"_dir": str(root / "results" / name)}
        for name in discover()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(discover()))
def test_quick_writes_json_markdown_and_figures(quick, name):
    record, folder = quick[name], Path(quick[name]["_dir"])
    assert record["experiment"] == name and record["quick"] is True and record["seed"] == 0
    assert record["dataset"]["name"] in ("digits", "quadrants", "iris")
    markdown = (folder / "results.md").read_text()
    assert markdown.startswith(f"# {name}: ")
    assert record["figures"] and record["tables"] and record["findings"]
    for file in record["figures"]:
        assert_png(folder / file)
        assert f"]({file})" in markdown
    for table in record["tables"]:
        assert table["rows"] and all(len(row) == len(table["columns"]) for row in table["rows"])
        assert f"## {table['title']}" in markdown and "| " + " | ".join(table["columns"]) + " |" in markdown


@pytest.mark.slow
def test_quick_samples(quick, digits):
    r = quick["samples"]["results"]
    assert r["shapes"]["x_train"] == list(digits.x_train.shape) and r["image_shape"] == [8, 8]
    assert r["first_labels"] == digits.y_train[:20].tolist()
    assert r["class_counts"]["test"] == np.bincount(digits.y_test, minlength=10).tolist()


@pytest.mark.slow
def test_quick_quadrants(quick):
    r = quick["quadrants"]["results"]
    assert r["shapes"] == {"X": [4, 2], "H": [4, 50], "Y": [4, 4]}
    probs = np.array(r["probabilities"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert r["predicted"] == r["labels"] == ["I", "II", "III", "IV"]
    assert (probs.max(axis=1) > 0.5).all()
    assert r["query_class"] == "I" and np.argmax(r["query_probabilities"]) == 0


@pytest.mark.slow
def test_quick_activations_step_hidden_layer_cannot_learn(quick):
    acts = quick["activations"]["results"]["activations"]
    step, sigmoid, relu = acts["step"], acts["sigmoid"], acts["relu"]
    assert step["initial_gradient_norm"]["hidden_0"] == 0.0
    assert step["relative_weight_change"]["hidden_0"] == 0.0  # not one hidden weight moved
    assert step["relative_weight_change"]["output"] > 0.0  # the output layer still learns
    for r in (sigmoid, relu):
        assert r["initial_gradient_norm"]["hidden_0"] > 0.0 and r["relative_weight_change"]["hidden_0"] > 0.01
    assert relu["test_accuracy"] > 0.5 and relu["test_accuracy"] > step["test_accuracy"]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in acts.values())


@pytest.mark.slow
def test_quick_epochs_summary_matches_runs(quick):
    r = quick["epochs"]["results"]
    assert r["seeds"] == [0, 1] and len(r["runs"]) == 2
    for mark, summary in r["test_accuracy_after"].items():
        values = [run["history"]["val_accuracy"][int(mark) - 1] for run in r["runs"]]
        assert summary["values"] == values
        assert summary["mean"] == pytest.approx(np.mean(values)) and summary["std"] == pytest.approx(
            np.std(values, ddof=1)
        )
    finals = [run["history"]["val_accuracy"][-1] for run in r["runs"]]
    assert finals == [run["test_metrics"]["accuracy"] for run in r["runs"]]
    assert r["runs"][0]["history"] != r["runs"][1]["history"]  # the seeds differ, so do the runs


@pytest.mark.slow
def test_quick_optimizers_all_seven_at_keras_defaults(quick):
    r = quick["optimizers"]["results"]
    assert set(r["optimizers"]) == set(optimizers.OPTIMIZERS)
    for name, o in r["optimizers"].items():
        assert o["learning_rate"] == optimizers.default_learning_rate(name)
        assert 0.0 <= o["test_accuracy"] <= 1.0 and np.isfinite(o["test_loss"])
    accs = [r["optimizers"][n]["test_accuracy"] for n in r["ranking"]]
    assert accs == sorted(accs, reverse=True)
    assert r["optimizers"]["adam"]["test_accuracy"] > 0.5


@pytest.mark.slow
def test_quick_dropout_gap_is_train_minus_test(quick):
    rates = quick["dropout"]["results"]["rates"]
    assert list(rates) == ["0", "0.2", "0.5"]
    for r in rates.values():
        assert r["gap"] == pytest.approx(r["train_accuracy"] - r["test_accuracy"])
        assert r["gap_per_epoch"][-1] == pytest.approx(r["gap"])
        assert r["test_accuracy"] == r["history"]["val_accuracy"][-1] > 0.5
        assert 1 <= r["best_val_loss_epoch"] <= len(r["history"]["val_loss"])


@pytest.mark.slow
def test_quick_losses_crossentropy_against_mse(quick):
    runs = quick["losses"]["results"]["runs"]
    assert list(runs) == ["adam", "sgd"]
    for by_loss in runs.values():
        ce, mse = by_loss["categorical_crossentropy"], by_loss["mse"]
        # the CE run's own test loss is cross-entropy: the per-epoch evaluation must agree with Keras' val_loss
        np.testing.assert_allclose(ce["test_crossentropy_per_epoch"], ce["history"]["val_loss"], rtol=1e-5)
        assert ce["initial_gradient_norm"]["output"] > mse["initial_gradient_norm"]["output"]
        assert 0.0 <= mse["test_mse"] <= 0.2  # at most 2/C: all probability on one wrong class
    assert runs["adam"]["categorical_crossentropy"]["test_accuracy"] > 0.5


@pytest.mark.slow
def test_quick_errors_confusion_matrix_and_confident_mistakes(quick, digits):
    r = quick["errors"]["results"]
    cm = np.array(r["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == len(digits.y_test)
    assert cm.sum(axis=1).tolist() == np.bincount(digits.y_test, minlength=10).tolist()
    assert r["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert r["errors"] == cm.sum() - np.trace(cm)
    errs = r["most_confident_errors"]
    assert errs and len(errs) <= 20
    p = [e["p_predicted"] for e in errs]
    assert p == sorted(p, reverse=True)
    for e in errs:
        assert e["true"] == digits.y_test[e["index"]] and e["predicted"] != e["true"]
        assert e["p_predicted"] >= e["p_true"]


@pytest.mark.slow
def test_quick_drift_tables_the_histories_it_keeps(quick):
    r = quick["drift"]["results"]
    histories, epochs = r["histories"], quick["drift"]["budget"]["epochs"]
    assert list(histories) == ["sequential", "vmap", "one ulp"] and r["seeds"] == [0, 1]
    for way in ("vmap", "one ulp"):
        for key in drift.KEYS:
            assert r["drift"][way][key] == drift.relative_drift(histories["sequential"], histories[way], key)
            assert len(r["drift"][way][key]) == epochs
            assert r["first_epoch_above_tolerance"][way][key] == drift.first_above(r["drift"][way][key])
    # the sweep's promise on small sizes: vmap within 1e-5 of the single runs
    assert max(r["drift"]["vmap"]["loss"] + r["drift"]["vmap"]["val_loss"]) <= drift.TOLERANCE
    assert r["test_accuracy"]["sequential"] == [h["val_accuracy"][-1] for h in histories["sequential"]]


@pytest.mark.slow
def test_quick_tabular_puts_scikit_learn_on_the_same_split(quick):
    from sklearn.linear_model import LogisticRegression

    from mlpjax import data
    from mlpjax.experiments import tabular

    record = quick["tabular"]
    r = record["results"]["iris"]
    assert list(record["results"]) == list(tabular.QUICK_TABLES) and r["seeds"] == [0, 1]
    assert list(r["features"]) == list(tabular.SCALINGS) == ["standard", "none"]
    iris = data.load_dataset("iris")
    for normalize, features in r["features"].items():
        accuracy = features["test_accuracy"]
        assert set(accuracy) == set(tabular.METHODS) and len(accuracy["mlpjax"]) == 2
        assert all(0.0 <= a <= 1.0 for values in accuracy.values() for a in values)
        # the same split for every method: the logistic regression, refitted here on mlpjax's split, agrees
        refit = tabular.scaled(LogisticRegression(max_iter=5000), normalize).fit(iris.x_train, iris.y_train)
        assert accuracy["sklearn LogisticRegression"] == [float(np.mean(refit.predict(iris.x_test) == iris.y_test))]
        assert all(s > 0 for s in features["seconds_per_model"].values())
    assert r["epochs"] == tabular.QUICK_EPOCHS


def test_tabular_gives_every_method_the_same_features(tmp_path, monkeypatch):
    """Standardized: mlpjax trains with normalize "standard" (each seed's accuracy is fit's of that config, which
    fits scikit-learn's StandardScaler: tests/data/test_scaling.py) and scikit-learn's estimators sit behind a
    StandardScaler fitted on the same training rows; raw: neither scales. The logistic regression, refitted here
    on each, agrees."""
    from sklearn.linear_model import LogisticRegression

    from mlpjax import data
    from mlpjax.core.config import TrainConfig
    from mlpjax.experiments import tabular
    from mlpjax.training import train

    monkeypatch.setattr(tabular, "QUICK_EPOCHS", 3)
    report = tabular.run(tmp_path, quick=True, source=common.DataChoice(), seed=0, log=lambda line: None)
    iris = data.load_dataset("iris")
    r = report.results["iris"]
    assert [row[:3] for row in report.tables[0].rows] == [
        ["iris", k, m] for k in ("standard", "none") for m in tabular.METHODS
    ]
    for normalize, estimators in (("standard", ["standardscaler", "logisticregression"]), ("none", [])):
        accuracy = r["features"][normalize]["test_accuracy"]
        alone = [train.fit(TrainConfig(dataset="iris", epochs=3, seed=s, normalize=normalize), iris) for s in (0, 1)]
        assert accuracy["mlpjax"] == [f.test_metrics["accuracy"] for f in alone]
        assert (alone[0].scaler is not None) == (normalize == "standard")
        refit = tabular.scaled(LogisticRegression(max_iter=5000), normalize).fit(iris.x_train, iris.y_train)
        assert [name for name, _ in getattr(refit, "steps", [])] == estimators
        assert accuracy["sklearn LogisticRegression"] == [float(np.mean(refit.predict(iris.x_test) == iris.y_test))]
    scalings = r["features"]
    assert scalings["standard"]["test_accuracy"]["mlpjax"] != scalings["none"]["test_accuracy"]["mlpjax"]  # 3 epochs
    assert (tmp_path / "accuracy.png").exists()


def test_nudged_state_moves_the_weight_of_largest_gradient_by_one_ulp(digits):
    import jax

    from mlpjax.core import losses
    from mlpjax.core.config import TrainConfig
    from mlpjax.core.state import create_train_state

    config = TrainConfig(dataset="digits", seed=3)
    model_config = config.model_config(digits.input_dim, digits.num_classes)
    fresh = create_train_state(jax.random.PRNGKey(3), config, model_config)
    state, where = drift.nudged_state(config, digits)
    before, after = np.asarray(fresh.params["hidden_0"]["kernel"]), np.asarray(state.params["hidden_0"]["kernel"])
    assert np.argwhere(before != after).tolist() == [list(where)]
    assert after[where] == np.nextafter(before[where], np.float32(np.inf)) > before[where]
    batch = {"image": digits.x_train[: common.GRAD_BATCH], "label": digits.y_train[: common.GRAD_BATCH]}
    grads = jax.grad(lambda p: losses.loss(p, batch, None, model_config=model_config, train=False)[0])(fresh.params)
    g = np.abs(np.asarray(grads["hidden_0"]["kernel"]))
    assert g[where] == g.max() > 0
    np.testing.assert_array_equal(
        np.asarray(state.params["output"]["kernel"]), np.asarray(fresh.params["output"]["kernel"])
    )
    assert int(state.step) == 0 and np.array_equal(np.asarray(state.key), np.asarray(fresh.key))


def test_relative_drift_is_the_largest_over_runs_per_epoch():
    reference = [{"loss": [1.0, 2.0]}, {"loss": [4.0, 1.0]}]
    other = [{"loss": [1.0, 2.5]}, {"loss": [3.0, 1.0]}]
    assert drift.relative_drift(reference, other, "loss") == [0.25, 0.25]
    assert drift.first_above([0.0, 1e-6, 2e-5, 0.0]) == 3 and drift.first_above([0.0, 1e-5]) is None


@pytest.mark.slow
def test_quick_run_is_reproducible_from_the_seed(quick, tmp_path):
    cache = Path(quick["quadrants"]["_dir"]).parents[1] / "jax-cache"
    run_quick(["quadrants", "--seed", "0"], tmp_path / "again", cache)
    again = json.loads((tmp_path / "again" / "quadrants" / "results.json").read_text())
    assert again["results"] == quick["quadrants"]["results"]
    assert again["tables"] == quick["quadrants"]["tables"]


@pytest.mark.slow
def test_script_in_experiments_folder_runs_its_experiment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLPJAX_DATA_DIR"}
    script = Path(__file__).resolve().parents[2] / "experiments" / "run.py"
    proc = subprocess.run(
        [sys.executable, str(script), "samples", "--quick", "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "samples" / "results.json").read_text())["experiment"] == "samples"


def test_an_experiment_on_a_full_disk_is_one_line_and_keeps_the_earlier_results(tmp_path, full_disk, capsys):
    import shutil

    first = ["experiment", "samples", "--quick", "--out", str(tmp_path / "res")]
    assert cli.main(first) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = cli.main(["experiment", "samples", "--quick", "--out", str(full_disk / "res")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no space left on the device" in err, err
    assert not [p for p in full_disk.rglob("*") if p.is_file() and p.name != "filler"]  # nothing half-written
    # the same full disk under earlier results: they are kept whole (each file replaced atomically or not at all)
    (full_disk / "filler").unlink()
    shutil.rmtree(full_disk / "res")
    shutil.copytree(tmp_path / "res", full_disk / "res")
    before = {p.name: p.read_bytes() for p in (full_disk / "res" / "samples").iterdir()}
    fill_disk(full_disk)
    code = cli.main(["experiment", "samples", "--quick", "--out", str(full_disk / "res"), "--overwrite"])
    assert code == 2 and "no space left on the device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (full_disk / "res" / "samples").iterdir()} == before
