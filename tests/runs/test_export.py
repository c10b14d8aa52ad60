"""mlpjax export (ONNX, Keras, npz) and mlpjax import-keras: each format computes mlpjax's probabilities to 1e-5,
for any batch size; what cannot be exported or imported is refused in one line naming the part."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import child_env, mnist_dir, run_cli, small_config

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: no TensorFlow needed

TOL = 1e-5


def needs(module: str):
    return pytest.importorskip(module, reason=f'{module} is not installed (pip install "mlpjax[export]")')


def trained_run(directory, dataset_name, **settings):
    from mlpjax import data
    from mlpjax.runs import run

    config = small_config(dataset=dataset_name, **settings)
    started = run.start(directory, config)
    started.fit(data.load_dataset(dataset_name, config.data_dir))
    return directory


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("export") / "run", "digits")


@pytest.fixture(scope="module")
def digits_model(digits_run):
    from mlpjax.runs import checkpoint

    return checkpoint.load_model(digits_run)


def test_npz_is_read_with_numpy_alone(digits_model, digits, tmp_path):
    """A process that imports numpy only reads every array and the architecture (no pickle) and computes the
    probabilities, to 1e-5 of mlpjax's."""
    from mlpjax.runs import export

    out = export.export(digits_model, "npz", tmp_path / "model.npz")
    np.save(tmp_path / "x.npy", digits.x_test)
    reader = f"""
import json, sys
import numpy as np
z = np.load({str(out)!r}, allow_pickle=False)
arch = json.loads(str(z["architecture.json"]))
x = np.load({str(tmp_path / "x.npy")!r})
for layer in arch["layers"]:
    x = x @ z[layer["kernel"]] + z[layer["bias"]]
    x = np.maximum(x, 0) if layer["activation"] == "relu" else np.exp(x - x.max(1, keepdims=True))
np.save({str(tmp_path / "p.npy")!r}, x / x.sum(1, keepdims=True))
assert not any(m.split(".")[0] in ("jax", "mlpjax", "flax") for m in sys.modules)
print(json.dumps(arch))
"""
    proc = subprocess.run(
        [sys.executable, "-c", reader],
        capture_output=True,
        text=True,
        timeout=120,
        env={**child_env(), "PYTHONPATH": ""},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    arch = json.loads(proc.stdout)
    m = digits_model.model_config
    assert (arch["input_dim"], arch["hidden"], arch["num_classes"], arch["activation"]) == (
        m.input_dim,
        list(m.hidden),
        m.num_classes,
        "relu",
    )
    expected = digits_model.predict_proba(digits.x_test)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(export.npz_predict_proba(out, digits.x_test), expected, atol=TOL, rtol=0)


def _onnx_probabilities(path, x):
    ort = needs("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"x": np.asarray(x, np.float32)})[0]


@pytest.mark.parametrize("where", ["digits", pytest.param("mnist", marks=pytest.mark.mnist)])
def test_onnx_runs_in_onnxruntime_with_the_same_probabilities(where, digits_run, digits, tmp_path):
    onnx = needs("onnx")
    from mlpjax import data
    from mlpjax.runs import checkpoint, export

    if where == "mnist":
        if mnist_dir() is None:
            pytest.skip("real MNIST not found")
        run_dir = trained_run(tmp_path / "mnist_run", "mnist", epochs=1, batch_size=128, data_dir=str(mnist_dir()))
        dataset = data.load_dataset("mnist", str(mnist_dir()))
    else:
        run_dir, dataset = digits_run, digits
    classifier = checkpoint.load_model(run_dir)
    path = export.export(classifier, "onnx", tmp_path / "model.onnx")
    proto = onnx.load(str(path))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", export.ONNX_OPSET)]
    expected = classifier.predict_proba(dataset.x_test)
    np.testing.assert_allclose(_onnx_probabilities(path, dataset.x_test), expected, atol=TOL, rtol=0)
    for n in (1, 7, 129):  # any batch size
        np.testing.assert_allclose(_onnx_probabilities(path, dataset.x_test[:n]), expected[:n], atol=TOL, rtol=0)


def test_onnx_computes_the_step_activation_too(digits, tmp_path):
    """A registered activation without a Keras equivalent (step) still exports to ONNX and npz; Keras refuses it
    in one line naming it."""
    import jax

    from mlpjax.core import model
    from mlpjax.errors import UserInputError
    from mlpjax.runs import export

    config = model.ModelConfig(input_dim=64, hidden=(16, 8), activation="step", dropout=0.0, num_classes=10)
    classifier = model.Classifier(model.init(jax.random.PRNGKey(3), config), config)
    expected = classifier.predict_proba(digits.x_test)
    np.testing.assert_allclose(
        _onnx_probabilities(export.export(classifier, "onnx", tmp_path / "s.onnx"), digits.x_test),
        expected,
        atol=TOL,
        rtol=0,
    )
    np.testing.assert_allclose(
        export.npz_predict_proba(export.export(classifier, "npz", tmp_path / "s.npz"), digits.x_test),
        expected,
        atol=TOL,
        rtol=0,
    )
    with pytest.raises(UserInputError, match="activation 'step' has no Keras equivalent"):
        export.export(classifier, "keras", tmp_path / "s.keras")
    assert not (tmp_path / "s.keras").exists()


def test_keras_export_loads_in_safe_mode_with_the_same_probabilities(
    digits_run, digits_model, digits, capsys, tmp_path
):
    keras = needs("keras")
    out = tmp_path / "model.keras"
    code, stdout, _ = run_cli(capsys, "export", digits_run, "--format", "keras", "--out", out)
    assert code == 0 and str(out) in stdout
    net = keras.saving.load_model(out, safe_mode=True)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Dropout", "Dense"]
    assert net.layers[1].rate == pytest.approx(digits_model.model_config.dropout)
    assert net.layers[-1].get_config()["activation"] == "softmax"
    expected = digits_model.predict_proba(digits.x_test)
    np.testing.assert_allclose(np.asarray(net.predict(digits.x_test, verbose=0)), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(np.asarray(net(digits.x_test[:3], training=False)), expected[:3], atol=TOL, rtol=0)


@pytest.mark.parametrize(
    "fmt, name, message",
    [
        ("keras", "model.h5", "--out {out}: a Keras model file must end in .keras"),
        ("npz", "exists.npz", "--out {out}: already exists"),
    ],
)
def test_export_refuses_a_bad_out_in_one_line(digits_run, capsys, tmp_path, fmt, name, message):
    if fmt == "keras":
        needs("keras")
    out = tmp_path / name
    if name.startswith("exists"):
        out.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "export", digits_run, "--format", fmt, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert message.format(out=out) in err
    assert not name.startswith("exists") or out.read_bytes() == b"mine"  # nothing saved is lost


# --- import-keras ------------------------------------------------------------------------------------------------


def tutorial_keras(keras, layers_between=(), input_dim=64, output_activation="softmax"):
    """The tutorial's model at digits' size: Dense(32, relu) -> Dropout(0.2) [-> more] -> Dense(10, softmax)."""
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.2),
            *layers_between,
            keras.layers.Dense(10, activation=output_activation),
        ]
    )


def test_import_keras_gives_a_run_that_the_commands_accept(digits, capsys, tmp_path):
    keras = needs("keras")
    from mlpjax.runs import checkpoint

    net = tutorial_keras(keras, [keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2)])
    net.save(tmp_path / "tutorial.keras")
    code, out, err = run_cli(capsys, "import-keras", tmp_path / "tutorial.keras", "--output", tmp_path / "run")
    assert code == 0, err
    ckpt = checkpoint.restore(tmp_path / "run")
    assert ckpt.config.dataset == "digits"  # the registered dataset of 64 features and 10 classes
    assert (ckpt.model_config.hidden, ckpt.model_config.activation, ckpt.model_config.dropout) == (
        (32, 16),
        "relu",
        0.2,
    )
    np.testing.assert_allclose(
        ckpt.classifier.predict_proba(digits.x_test),
        np.asarray(net.predict(digits.x_test, verbose=0)),
        atol=TOL,
        rtol=0,
    )
    for argv in (
        ["evaluate", tmp_path / "run"],
        ["summary", tmp_path / "run"],
        ["predict", tmp_path / "run", "--index", "9", "--out", tmp_path / "p9.png"],
    ):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0, (argv, err)
    assert json.loads((tmp_path / "run" / "imported.json").read_text())["layers"]["output"] == net.layers[-1].name


@pytest.mark.parametrize("kind", ["BatchNormalization", "Lambda", "linear output"])
def test_import_keras_refuses_other_layers_in_one_line(capsys, tmp_path, kind):
    """A layer mlpjax's MLP has no place for is named in one line, before Keras reads the file: a Lambda's
    code never runs (it would write a file)."""
    keras = needs("keras")
    marker = tmp_path / "ran"
    if kind == "linear output":
        net, name = tutorial_keras(keras, output_activation="linear"), None
    else:
        layer = (
            keras.layers.BatchNormalization(name="odd")
            if kind == "BatchNormalization"
            else keras.layers.Lambda(
                eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"), name="odd"
            )
        )
        net, name = tutorial_keras(keras, [layer]), "odd"
    marker.unlink(missing_ok=True)  # building the Lambda may have called it
    net.save(tmp_path / "m.keras")
    code, _, err = run_cli(capsys, "import-keras", tmp_path / "m.keras", "--output", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (f"layer 'odd' is a {kind}" if name else f"layer {net.layers[-1].name!r} (the output Dense)") in err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_import_keras_refuses_a_dataset_of_another_shape(capsys, tmp_path):
    keras = needs("keras")
    tutorial_keras(keras).save(tmp_path / "m.keras")
    code, _, err = run_cli(
        capsys, "import-keras", tmp_path / "m.keras", "--output", tmp_path / "run", "--dataset", "mnist"
    )
    assert code == 2 and "--dataset mnist has 784 features and 10 classes" in err
    assert not (tmp_path / "run").exists()


def test_import_keras_takes_a_file_of_the_models_shape(capsys, tmp_path, monkeypatch):
    keras = needs("keras")
    from conftest import blobs, write_table

    from mlpjax.runs import checkpoint

    tutorial_keras(keras, input_dim=4).save(tmp_path / "m.keras")  # 4 features, 10 classes
    x, y = blobs(n_per_class=5, classes=10)
    write_table(tmp_path / "ten.csv", x, y)
    write_table(tmp_path / "three.csv", *blobs())
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "import-keras", "m.keras", "--output", "bad", "--dataset", "three.csv")
    assert code == 2 and err.count("\n") == 1, err
    assert "--dataset three.csv has 4 features and 3 classes; the model in m.keras takes 4 and 10" in err
    assert not (tmp_path / "bad").exists()
    code, out, err = run_cli(capsys, "import-keras", "m.keras", "--output", "run", "--dataset", "ten.csv")
    assert code == 0, err
    assert checkpoint.restore(tmp_path / "run").config.dataset == str(tmp_path / "ten.csv")  # recorded absolute
    monkeypatch.chdir(tmp_path.parent)
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    assert code == 0 and sum(map(sum, json.loads(out)["confusion"])) == 10, err


# --- random values for every flag ---------------------------------------------------------------------------------

EXPORT_FLAGS = ["DIR", "--format", "--out"]
IMPORT_FLAGS = ["MODEL", "--output", "--dataset"]


def cli_fuzz():
    """The flag fuzz tests' module (its values, worker and checks), found by path wherever the suite keeps it."""
    import importlib.util

    from conftest import REPO

    if "test_cli_fuzz" not in sys.modules:
        path = next((REPO / "tests").rglob("test_cli_fuzz.py"))
        spec = importlib.util.spec_from_file_location("test_cli_fuzz", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["test_cli_fuzz"] = module
        spec.loader.exec_module(module)
    return sys.modules["test_cli_fuzz"]


@pytest.fixture(scope="module")
def tiny_run_and_keras(tmp_path_factory):
    """A saved run of the tutorial's four points and its Keras export (when Keras is installed)."""
    from mlpjax import cli

    folder = tmp_path_factory.mktemp("fuzz-export")
    assert cli.main([*cli_fuzz().BASE, "--output", str(folder / "run")]) == 0
    keras_file = folder / "run.keras"
    try:
        from mlpjax.runs import checkpoint, export

        export.export(checkpoint.load_model(folder / "run"), "keras", keras_file)
    except Exception:  # noqa: BLE001 - without Keras the import fuzz gets a path that does not exist
        pass
    return folder / "run", keras_file


@pytest.mark.slow
@pytest.mark.parametrize("command", ["export", "import-keras"])
def test_export_and_import_with_a_random_value_for_any_flag(command, tiny_run_and_keras, cli_worker, tmp_path):
    """Each command ends with 0 or one clean line of status 2, never a traceback, whatever one flag is given."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    fuzz = cli_fuzz()

    run_dir, keras_file = tiny_run_and_keras
    flags = EXPORT_FLAGS if command == "export" else IMPORT_FLAGS

    @settings(fuzz.FUZZ, max_examples=fuzz.SEARCH or 25)
    @given(flag=st.sampled_from(flags), value=fuzz.values(), n=st.integers(0, 10**6))
    def check(flag, value, n):
        where = tmp_path / str(n)
        where.mkdir(exist_ok=True)
        if command == "export":
            given_ = {"DIR": str(run_dir), "--format": "npz", "--out": str(where / "m.npz"), flag: value}
            argv = ["export", given_["DIR"], "--format", given_["--format"], "--out", given_["--out"]]
        else:
            given_ = {"MODEL": str(keras_file), "--output": str(where / "run"), "--dataset": "quadrants", flag: value}
            argv = ["import-keras", given_["MODEL"], "--output", given_["--output"], "--dataset", given_["--dataset"]]
        code, err = fuzz.run_in_worker(cli_worker, where, *argv)
        fuzz.assert_one_clean_line(code, err, flag, value)

    check()


@pytest.fixture(scope="module")
def normalized_digits_run(tmp_path_factory):
    """digits trained with --normalize standard: its features are scaled pixels."""
    return trained_run(tmp_path_factory.mktemp("export-normalized") / "run", "digits", normalize="standard")


def test_every_format_of_a_normalized_run_takes_the_raw_features(normalized_digits_run, digits, capsys, tmp_path):
    """npz, ONNX and Keras exports of a run trained with --normalize take the raw features and give mlpjax's
    probabilities to 1e-5 (npz: the scaling's arrays named in the JSON; Keras: a Normalization layer first);
    importing the Keras file back is refused in one line naming that layer."""
    from mlpjax.runs import checkpoint, export

    classifier = checkpoint.load_model(normalized_digits_run)
    expected = classifier.predict_proba(digits.x_test)
    out = {fmt: tmp_path / f"model.{fmt}" for fmt in ("npz", "onnx", "keras")}
    for fmt, path in out.items():
        code, _, err = run_cli(capsys, "export", normalized_digits_run, "--format", fmt, "--out", path)
        assert code == 0, err
    with np.load(out["npz"], allow_pickle=False) as z:
        arch = json.loads(str(z[export.ARCHITECTURE]))
        assert arch["scaling"] == {"kind": "standard", "shift": "scaling.shift", "scale": "scaling.scale"}
        np.testing.assert_array_equal(z["scaling.scale"], classifier.scaler.scale)
        assert "(x - scaling.shift) / scaling.scale" in arch["computes"]
    np.testing.assert_allclose(export.npz_predict_proba(out["npz"], digits.x_test), expected, atol=TOL, rtol=0)
    np.testing.assert_allclose(_onnx_probabilities(out["onnx"], digits.x_test), expected, atol=TOL, rtol=0)
    keras = needs("keras")
    net = keras.saving.load_model(out["keras"], safe_mode=True)
    assert [type(layer).__name__ for layer in net.layers] == ["Normalization", "Dense", "Dropout", "Dense"]
    np.testing.assert_allclose(np.asarray(net.predict(digits.x_test, verbose=0)), expected, atol=TOL, rtol=0)
    code, _, err = run_cli(capsys, "import-keras", out["keras"], "--output", tmp_path / "back")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "layer 'scaling' is a Normalization (a feature scaling); mlpjax imports no scaling layer" in err
    assert not (tmp_path / "back").exists()


@pytest.mark.parametrize("fmt", ["npz", "onnx", "keras"])
def test_an_export_to_a_full_disk_is_one_line_and_leaves_nothing(digits_run, full_disk, capsys, fmt):
    if fmt != "npz":
        needs(fmt)
    out = full_disk / f"model.{fmt}"
    code, _, err = run_cli(capsys, "export", digits_run, "--format", fmt, "--out", out)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"--out {out}: cannot write: no space left on the device" in err, err
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no partial or temporary file
