"""Parts registered from the user's code (mlpjax.plugins): each kind trains, evaluates, predicts and resumes from
Python and through the command line (``--plugin FILE.py``, ``--plugin MODULE``, an installed entry point); a run
records the part's name alone and, where the part is not registered, loading it says so in one line and imports
nothing; bad registrations and failing plugins are one line each."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import run_cli

import mlpjax
from mlpjax.core.config import TrainConfig
from mlpjax.errors import UserInputError
from mlpjax.runs import checkpoint, export
from mlpjax.runs import run as runs

# A plugin: one part of each kind. top2 and squared are what a test recomputes by hand.
PARTS = '''
import jax
import jax.numpy as jnp
import numpy as np
import optax

import mlpjax


def top2(probs, targets):
    """1 where the true class is among the two most probable."""
    second = jnp.sort(probs, axis=-1)[:, -2:-1]
    return jnp.sum(jnp.where(probs >= second, targets, 0.0), axis=-1)


def squared(logits, targets):
    return jnp.sum(jnp.square(jax.nn.softmax(logits) - targets), axis=-1)


def load():
    rng = np.random.default_rng(0)
    x = rng.random((160, 5), np.float32)
    y = np.argmax(x[:, :3], axis=1)  # three classes: which of the first three features is the largest
    return mlpjax.make_dataset("anything", (x[:120], y[:120]), (x[120:], y[120:]), num_classes=3)


mlpjax.register_activation("gelu", jax.nn.gelu)
mlpjax.register_optimizer("adamw", lambda lr: optax.adamw(lr, weight_decay=1e-4), 0.01)
mlpjax.register_loss("squared", squared)
mlpjax.register_metric("top2", top2)
mlpjax.register_dataset("three", load, epochs=2, about="160 random rows, 3 classes", class_names=("a", "b", "c"))
'''
PARTS_USED = {"activation": "gelu", "optimizer": "adamw", "loss": "squared", "metric": "top2", "dataset": "three"}
CONFIG = dict(
    dataset="three",
    activation="gelu",
    optimizer="adamw",
    loss="squared",
    metrics=("accuracy", "top2"),
    hidden=(8,),
    dropout=0.0,
    epochs=1,
    batch_size=32,
)
TRAIN_FLAGS = [
    "--dataset",
    "three",
    "--activation",
    "gelu",
    "--optimizer",
    "adamw",
    "--loss",
    "squared",
    "--metrics",
    "accuracy,top2",
    "--hidden",
    "8",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--quiet",
]


def write_parts(folder: Path, name: str = "parts") -> Path:
    path = folder / f"{name}.py"
    path.write_text(PARTS)
    return path


def missing_line(directory, kind: str, name: str, plugin: str) -> str:
    arguments = {"optimizer": "build, default_lr", "dataset": "load"}.get(kind, "fn")
    return (
        f"{directory}: this run uses {kind} {name!r}, which is not registered; register it with "
        f"mlpjax.register_{kind}({name!r}, {arguments}) or {plugin}"
    )


def forget_all(plugins) -> None:
    """What a fresh process knows: none of PARTS_USED, no plugin loaded."""
    for kind, name in PARTS_USED.items():
        del plugins.KINDS[kind].registry[name]
    plugins._LOADED.clear()


def test_each_kind_trains_evaluates_predicts_and_resumes_from_python(registries, tmp_path):
    parts = registries.load_module(write_parts(tmp_path))
    assert registries.registered() == {k: (v,) for k, v in PARTS_USED.items()}
    config = TrainConfig.from_dict(CONFIG)
    result = runs.start(tmp_path / "run", config).fit()
    assert len(result.history["val_top2"]) == 1 and result.history["lr"] == [pytest.approx(0.01)]  # its default lr

    ds = config.load_dataset()
    assert (ds.name, ds.class_names, ds.input_dim, ds.num_classes) == ("three", ("a", "b", "c"), 5, 3)
    clf = mlpjax.load_model(tmp_path / "run")
    p = clf.params
    logits = jax.nn.gelu(ds.x_test @ p["hidden_0"]["kernel"] + p["hidden_0"]["bias"]) @ p["output"]["kernel"]
    logits = logits + p["output"]["bias"]
    probs = clf.predict_proba(ds.x_test)
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-5, atol=1e-6)  # the model applies gelu
    targets = mlpjax.one_hot(ds.y_test, 3)
    report = runs.evaluate(tmp_path / "run")
    assert report["test_metrics"]["top2"] == pytest.approx(float(jnp.mean(parts.top2(probs, targets))), abs=1e-6)
    assert report["test_loss"] == pytest.approx(float(jnp.mean(parts.squared(logits, targets))), abs=1e-5)
    assert report["test_metrics"]["top2"] == pytest.approx(result.test_metrics["top2"], abs=1e-6)
    assert report["test_metrics"]["top2"] >= report["test_accuracy"]  # top-2 holds every top-1 hit

    resumed = runs.resume(tmp_path / "run", {"epochs": 2}).fit()
    assert len(resumed.history["val_top2"]) == 2
    text = (tmp_path / "run" / "checkpoints" / "2" / "meta" / "metadata").read_text()
    saved = json.loads(text)["train_config"]
    assert {k: saved[k] for k in ("activation", "optimizer", "loss", "dataset")} == {
        "activation": "gelu",
        "optimizer": "adamw",
        "loss": "squared",
        "dataset": "three",
    }
    assert saved["metrics"] == ["accuracy", "top2"]
    assert "parts" not in text and str(tmp_path) not in text  # the names alone, never where they came from


def test_a_run_whose_part_is_not_registered_says_which_and_how(registries, tmp_path, capsys):
    parts = write_parts(tmp_path)
    registries.load_plugins(parts, installed=False)
    run_dir = tmp_path / "run"
    runs.start(run_dir, TrainConfig.from_dict(CONFIG)).fit()
    for kind, name in PARTS_USED.items():
        registry = registries.KINDS[kind].registry
        value = registry.pop(name)
        with pytest.raises(registries.MissingPartError) as e:
            checkpoint.restore(run_dir)
        assert str(e.value) == missing_line(run_dir, kind, name, "mlpjax.load_plugins(MODULE)")
        registry[name] = value

    forget_all(registries)
    for load in (
        lambda: mlpjax.load_model(run_dir),
        lambda: runs.evaluate(run_dir),
        lambda: runs.resume(run_dir, {"epochs": 2}),
    ):
        with pytest.raises(registries.MissingPartError, match="activation 'gelu', which is not registered"):
            load()
    for argv in (["evaluate", run_dir], ["predict", run_dir, "--index", "0"], ["train", "--resume", run_dir]):
        code, out, err = run_cli(capsys, *argv)
        line = missing_line(run_dir, "activation", "gelu", "--plugin MODULE")
        assert (code, out, err) == (2, "", f"mlpjax {argv[0]}: error: {line}\n")
    code, out, _ = run_cli(capsys, "evaluate", run_dir, "--plugin", parts)
    assert code == 0 and ", top2 " in out


def test_the_command_line_uses_a_plugin_file(registries, tmp_path, capsys):
    parts, run_dir = write_parts(tmp_path), tmp_path / "run"
    code, out, _ = run_cli(capsys, "train", "--help", "--plugin", parts)
    assert code == 0
    assert "tanh, gelu" in out and "three: 160 random rows, 3 classes" in " ".join(out.split())
    code, _, err = run_cli(capsys, "train", "--plugin", parts, *TRAIN_FLAGS, "--output", run_dir)
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", run_dir, f"--plugin={parts}")
    assert code == 0 and "on three test" in out and ", top2 " in out, err
    code, out, err = run_cli(capsys, "predict", run_dir, "--plugin", parts, "--index", "2")
    assert code == 0 and out.startswith("three test sample 2: predicted "), err
    code, out, err = run_cli(capsys, "summary", run_dir, "--plugin", parts)
    assert code == 0 and "Total params: 75 " in out, err  # 5 -> 8 -> 3
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "--epochs", "2", "--plugin", parts, "--quiet")
    assert code == 0, err
    assert checkpoint.restore(run_dir).epoch == 2


def test_the_command_line_uses_a_plugin_module_on_the_path(registries, tmp_path, capsys, monkeypatch):
    write_parts(tmp_path, "my_parts")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run_cli(capsys, "train", "--plugin", "my_parts", *TRAIN_FLAGS, "--output", tmp_path / "run")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--plugin", "my_parts", "--json")
    assert code == 0 and 0.0 <= json.loads(out)["test_metrics"]["top2"] <= 1.0, err


def fake_distribution(site: Path, entry_points: str, modules: dict[str, str]) -> None:
    """An installed distribution as importlib.metadata finds it: a dist-info folder on sys.path."""
    dist = site / "mlpjax_fake_parts-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mlpjax-fake-parts\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[mlpjax.plugins]\n{entry_points}")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)


def test_installed_plugins_load_at_the_start_of_a_command(registries, tmp_path, capsys, monkeypatch):
    fake_distribution(
        tmp_path / "site",
        "sign = fake_sign:register\nsquash = fake_squash\n",
        {
            "fake_sign": "import jax, mlpjax\n"
            "def register():\n    mlpjax.register_activation('softsign', jax.nn.soft_sign)\n",
            "fake_squash": "import jax, mlpjax\nmlpjax.register_activation('squash', lambda x: x / (1 + abs(x)))\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert [ep.name for ep in registries.entry_points()] == ["sign", "squash"]
    code, out, err = run_cli(capsys, "summary", "--activation", "softsign", "--hidden", "4")
    assert code == 0 and "Dense" in out, err
    assert registries.registered()["activation"] == ("softsign", "squash")
    code, _, err = run_cli(capsys, "summary", "--activation", "squash")  # loaded once: no second registration
    assert code == 0, err
    assert registries.load_plugins() == ["entry point sign = fake_sign:register", "entry point squash = fake_squash"]


def test_a_failing_installed_plugin_is_one_line(registries, tmp_path, capsys, monkeypatch):
    fake_distribution(tmp_path / "site", "boom = fake_boom\n", {"fake_boom": "raise RuntimeError('no GPU here')\n"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    code, out, err = run_cli(capsys, "evaluate", tmp_path)
    assert (code, out) == (2, "")
    assert err == (
        "mlpjax evaluate: error: plugin boom (entry point 'fake_boom' of group mlpjax.plugins, installed by "
        "mlpjax-fake-parts): cannot be loaded (RuntimeError: no GPU here)\n"
    )
    assert run_cli(capsys, "basics", "--json")[0] == 0  # a command that builds no model loads no plugin


@pytest.mark.parametrize(
    "source,message",
    [
        ("raise ValueError('bad')", "cannot be loaded (ValueError: bad)"),
        ("import mlpjax\nmlpjax.register_activation('relu', abs)", "activation 'relu': mlpjax has one of that name"),
        ("import mlpjax\nmlpjax.register_loss('sq', lambda z, t: z)", "loss 'sq': fn(logits, targets) must give"),
        ("import no_such_module_here", "cannot be loaded (ModuleNotFoundError: No module named"),
    ],
)
def test_a_failing_plugin_file_is_one_line_naming_it(registries, tmp_path, capsys, source, message):
    path = tmp_path / "bad_plugin.py"
    path.write_text(source)
    code, out, err = run_cli(capsys, "train", "--plugin", path, "--dataset", "quadrants")
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"mlpjax train: error: --plugin {path}: {message}")


def test_a_plugin_that_is_not_there_is_one_line(registries, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.py").write_text("")
    for plugin, line in (
        ("gone.py", "--plugin gone.py: no such file (a module: give its name, without .py)"),
        ("gone", "--plugin gone: no module of that name on sys.path (give a FILE.py path instead)"),
        (
            "here",
            "--plugin here: no module of that name on sys.path (give a FILE.py path instead); a file here: here.py",
        ),
        ("a b", "--plugin 'a b': expected a module name (my_parts) or a FILE.py path"),
    ):
        assert run_cli(capsys, "evaluate", "x", "--plugin", plugin) == (2, "", f"mlpjax evaluate: error: {line}\n")
    code, _, err = run_cli(capsys, "basics", "--plugin", "here")  # a command without plugins: not loaded
    assert code == 2 and "unrecognized arguments: --plugin here" in err


def test_loading_a_run_imports_nothing_it_names(registries, tmp_path, monkeypatch):
    """A checkpoint whose metadata names an importable module as its activation, and as a plugin, is refused in
    one line; the module is never imported."""
    marker = tmp_path / "imported"
    (tmp_path / "probe_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = TrainConfig(dataset="quadrants", epochs=1, model=mlpjax.ModelConfig(hidden=(4,)))
    runs.start(tmp_path / "run", config).fit()
    meta_file = tmp_path / "run" / "checkpoints" / "1" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta["train_config"]["activation"] = meta["model_config"]["activation"] = "probe_plugin"
    meta["plugin"] = meta["train_config"]["plugin"] = "probe_plugin"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(registries.MissingPartError, match="uses activation 'probe_plugin', which is not registered"):
        mlpjax.load_model(tmp_path / "run")
    assert "probe_plugin" not in sys.modules and not marker.exists()


def test_a_sweep_whose_part_is_not_registered_says_which(registries, tmp_path):
    from mlpjax.sweep import checkpoint as sweep_checkpoint

    config = {**TrainConfig(dataset="digits").to_dict(), "optimizer": "adamw"}
    plan = {"format": sweep_checkpoint.FORMAT, "version": sweep_checkpoint.FORMAT_VERSION, "strategy": "vmap"}
    (tmp_path / sweep_checkpoint.PLAN).write_text(json.dumps({**plan, "configs": [config]}))
    with pytest.raises(registries.MissingPartError) as e:
        sweep_checkpoint.load_plan(tmp_path)
    assert str(e.value) == (
        f"{tmp_path}: this sweep uses optimizer 'adamw', which is not registered; register it with "
        "mlpjax.register_optimizer('adamw', build, default_lr) or mlpjax.load_plugins(MODULE)"
    )


def test_a_vmapped_sweep_computes_registered_parts_as_one_fit_does(registries, tmp_path):
    registries.load_module(write_parts(tmp_path))
    configs = mlpjax.grid(CONFIG, {"lr": [0.01, 0.03]})
    sweep = mlpjax.run_sweep(configs, strategy="vmap")
    alone = mlpjax.fit(configs[1])
    assert sweep.runs[1].test_metrics["top2"] == pytest.approx(alone.test_metrics["top2"], abs=1e-5)
    assert sweep.runs[1].history["val_loss"] == pytest.approx(alone.history["val_loss"], abs=1e-5)


def fails(call, message: str) -> None:
    with pytest.raises(UserInputError) as e:
        call()
    assert str(e.value).startswith(message), str(e.value)


def test_bad_registrations_are_one_line_naming_the_part(registries):
    sgd = lambda lr: optax.sgd(lr)  # noqa: E731
    fails(lambda: mlpjax.register_activation("my-act", jnp.tanh), "activation name 'my-act': expected letters")
    fails(lambda: mlpjax.register_activation(3, jnp.tanh), "activation name 3: expected letters")
    fails(lambda: mlpjax.register_activation("tanh", jnp.tanh), "activation 'tanh': mlpjax has one of that name")
    fails(lambda: mlpjax.register_loss("huber", jnp.tanh), "loss 'huber': mlpjax has one")  # a Keras alias
    fails(lambda: mlpjax.register_metric("lr", jnp.tanh), "metric 'lr': mlpjax has one")  # a history key
    fails(lambda: mlpjax.register_metric("f1_score_3", jnp.tanh), "metric 'f1_score_3': mlpjax has one")
    fails(lambda: mlpjax.register_optimizer("adam", sgd, 0.1), "optimizer 'adam': mlpjax has one")
    fails(lambda: mlpjax.register_dataset("digits", list), "dataset 'digits': mlpjax has one")
    fails(lambda: mlpjax.register_activation("a", 3), "activation 'a': fn must be a function, got int")
    fails(
        lambda: mlpjax.register_activation("a", jnp.sum),
        "activation 'a': fn must map a float32 array to one of the same shape and dtype (elementwise); given "
        "(2, 3) float32 it gave () float32",
    )
    fails(lambda: mlpjax.register_activation("a", lambda x: float(x[0, 0]) * x), "activation 'a': fn fails under JAX")
    fails(lambda: mlpjax.register_activation("a", lambda x: x.astype(jnp.int32)), "activation 'a': fn must map")
    fails(
        lambda: mlpjax.register_loss("a", lambda z, t: z - t),
        "loss 'a': fn(logits, targets) must give one float per example (batch,); given (4, 3) float32 arrays it "
        "gave (4, 3) float32",
    )
    fails(lambda: mlpjax.register_metric("a", lambda p: p), "metric 'a': fn fails under JAX (TypeError")
    fails(lambda: mlpjax.register_optimizer("a", sgd, 0), "optimizer 'a': default_lr must be a positive number")
    fails(lambda: mlpjax.register_optimizer("a", lambda lr: 3, 0.1), "optimizer 'a': build(default_lr) fails")
    fails(
        lambda: mlpjax.register_optimizer("a", lambda lr: optax.sgd(float(lr)), 0.1),
        "optimizer 'a': build(lr) of a traced lr fails under JAX",
    )
    fails(
        lambda: mlpjax.register_optimizer("a", lambda lr: optax.sgd(lr * 1.0), 0.1),
        "optimizer 'a': build(lr) of a schedule fails under JAX (TypeError",
    )
    fails(lambda: mlpjax.register_dataset("d", lambda a, b: None), "dataset 'd': load must take no argument, or one")
    fails(lambda: mlpjax.register_dataset("d", list, epochs=0), "dataset 'd': epochs must be at least 1, got 0")
    fails(lambda: mlpjax.register_dataset("d", list, about="two\nlines"), "dataset 'd': about must be one line")
    fails(lambda: mlpjax.register_dataset("d", list, shape=(5,)), "dataset 'd': shape must be (input_dim, num")
    assert registries.registered() == {kind: () for kind in registries.KINDS}  # none of them was registered


def test_a_name_means_one_part_unless_replaced(registries):
    x = jnp.linspace(-2.0, 2.0, 12, dtype=jnp.float32).reshape(3, 4)
    mlpjax.register_activation("twice", lambda v: 2.0 * v)
    config = mlpjax.ModelConfig(input_dim=4, hidden=(5,), activation="twice", num_classes=2)
    params = mlpjax.init(jax.random.PRNGKey(0), config)
    first = mlpjax.Classifier(params, config).predict_proba(x)
    registered = registries.KINDS["activation"].registry["twice"]
    mlpjax.register_activation("twice", registered)  # the same function again: nothing to do
    fails(
        lambda: mlpjax.register_activation("twice", lambda v: 3.0 * v),
        "activation 'twice': another part of that name is registered already; pass replace=True",
    )
    np.testing.assert_array_equal(mlpjax.Classifier(params, config).predict_proba(x), first)
    mlpjax.register_activation("twice", lambda v: 3.0 * v, replace=True)  # compiled programs are dropped
    h = 3.0 * (x @ params["hidden_0"]["kernel"] + params["hidden_0"]["bias"])
    expected = jax.nn.softmax(h @ params["output"]["kernel"] + params["output"]["bias"])
    np.testing.assert_allclose(mlpjax.Classifier(params, config).predict_proba(x), expected, rtol=1e-5)


def test_a_registered_dataset_is_loaded_by_its_function_and_checked(registries, tmp_path):
    folders = []

    def from_folder(data_dir):
        folders.append(data_dir)
        x = np.eye(4, dtype=np.float32)
        return mlpjax.make_dataset("x", (x, [0, 1, 0, 1]), (x, [1, 0, 1, 0]), num_classes=2)

    mlpjax.register_dataset("folder", from_folder, shape=(4, 2))
    ds = mlpjax.load_dataset("folder", tmp_path)
    assert (ds.name, folders) == ("folder", [str(tmp_path)])
    assert TrainConfig(dataset="folder").epochs == 100  # a file's default, where none is given
    mlpjax.register_dataset("tuple", lambda: (1, 2))
    fails(lambda: mlpjax.load_dataset("tuple"), "dataset 'tuple': its load function gave tuple, not a mlpjax.Dataset")
    mlpjax.register_dataset("broken", lambda: {}["x"])
    fails(lambda: mlpjax.load_dataset("broken"), "dataset 'broken': its load function failed (KeyError: 'x')")
    mlpjax.register_dataset("named", lambda: from_folder(None), class_names=("a", "b", "c"))
    fails(lambda: mlpjax.load_dataset("named"), "dataset 'named': 3 class names for 2 classes")
    fails(lambda: mlpjax.data.check_data_dir("tuple", tmp_path), f"data_dir {tmp_path} is not read: dataset 'tuple'")


def test_export_refuses_a_registered_activation(registries, tmp_path):
    mlpjax.register_activation("gelu", jax.nn.gelu)
    config = mlpjax.ModelConfig(input_dim=4, hidden=(3,), activation="gelu", num_classes=2)
    clf = mlpjax.Classifier(mlpjax.init(jax.random.PRNGKey(0), config), config)
    for fmt in export.FORMATS:
        fails(
            lambda fmt=fmt: export.export(clf, fmt, tmp_path / "out"),
            "the model's activation 'gelu' was registered from Python (docs/plugins.md); mlpjax export writes the "
            "built-in activations only",
        )
    assert not (tmp_path / "out").exists()
