import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli, write_idx


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--epochs", "0"], "--epochs"),
        (["--batch-size", "-1"], "--batch-size"),
        (["--dropout", "1.5"], "--dropout"),
        (["--lr", "abc"], "--lr"),
        (["--hidden", "0"], "--hidden"),
    ],
)
def test_nonsense_flags_exit_2_naming_the_flag(capsys, argv, flag):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", *argv)
    assert code == 2
    assert flag in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "adamw"], "unknown optimizer 'adamw'; valid: sgd, adam, adagrad"),
        (["--loss", "xent"], "unknown loss 'xent'; valid: categorical_crossentropy"),
        (["--activation", "gelu"], "unknown activation 'gelu'; valid: relu, sigmoid, step, tanh"),
        (["--dataset", "cifar"], "unknown dataset 'cifar'"),
        (
            ["--normalize", "zscore"],
            "mlpjax train: error: --normalize 'zscore' is unknown; valid: none, minmax, standard",
        ),
    ],
)
def test_unknown_names_exit_2_with_the_valid_ones(capsys, argv, message):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["draw", "-1e+16"],
            "mlpjax draw: error: unrecognized arguments: -1e+16; mlpjax draw --help lists what it "
            "takes (a value that begins with '-' goes after '--')",
        ),
        (
            ["backprop", "extra"],
            "mlpjax backprop: error: unrecognized arguments: extra; mlpjax backprop --help lists what it takes",
        ),
    ],
)
def test_unrecognized_arguments_are_one_line_naming_the_command(capsys, argv, message):
    """Found by the flag fuzz: argparse's own message named no command (``mlpjax: error: ...``) under the
    usage of ``mlpjax`` itself."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.strip() == message


def test_missing_and_corrupted_data_name_the_path(capsys, idx_folder, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data-dir", str(tmp_path / "none"))
    assert code == 2 and "none: does not exist" in err
    code, _, err = run_cli(capsys, "train", "--data-dir", str(idx_folder / "train-labels-idx1-ubyte.gz"))
    assert code == 2 and "train-labels-idx1-ubyte.gz: is a file, expected a folder" in err  # issue 13, defect 13
    (idx_folder / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "train", "--data-dir", str(idx_folder))
    assert code == 2 and "train-images-idx3-ubyte.gz" in err and len(err.strip().splitlines()) == 1


def test_labels_out_of_range_exit_2(capsys, idx_folder):
    write_idx(idx_folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 10))
    code, _, err = run_cli(capsys, "train", "--data-dir", str(idx_folder), "--quiet")
    assert code == 2 and "test label 10 at index 0 is out of range" in err


def test_train_on_digits_prints_results_and_writes_metrics(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "train", "--dataset", "digits", "--epochs", "3", "--hidden", "32", "--quiet", "--output", str(tmp_path)
    )
    assert code == 0
    assert "test accuracy" in out and "test sample 9: predicted" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["hidden"] == [32] and len(metrics["history"]["loss"]) == 3
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in out


def test_the_console_script_gives_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mlpjax.cli", "train", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip() == f"mlpjax train: error: {tmp_path}: missing train-images-idx3-ubyte.gz "
        "(or train-images-idx3-ubyte); an MNIST-format folder holds train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
    )


def test_confusion_and_out_never_replace_a_file_and_an_empty_image_name_is_one_line(capsys, tmp_path):
    run = tmp_path / "run"
    code, _, _ = run_cli(
        capsys, "train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet", "--output", run
    )
    assert code == 0
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"keep me")
    code, _, err = run_cli(capsys, "evaluate", run, "--confusion", taken)
    assert code == 2 and f"--confusion {taken}: already exists" in err and taken.read_bytes() == b"keep me"
    code, _, err = run_cli(capsys, "evaluate", run, "--confusion", tmp_path)
    assert code == 2 and "--confusion" in err and "Traceback" not in err
    code, out, _ = run_cli(capsys, "evaluate", run, "--confusion", tmp_path / "cm.png")
    assert code == 0 and (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG" and "precision" in out
    code, _, err = run_cli(capsys, "predict", run, "--image", "")  # was a TypeError: '' is not None
    assert code == 2 and "--image" in err and len(err.strip().splitlines()) == 1


# --- the flags once: train, sweep and summary build them from TrainConfig's field descriptions ---


def command_parser(name: str):
    """The argparse parser of ``mlpjax NAME``."""
    import argparse

    from mlpjax import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def options(parser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def shown(parser) -> str:
    """The help as printed, its line breaks and indents made single spaces."""
    return " ".join(parser.format_help().split())


# A valid value of each training field other than its default: (as sweep takes it, what the configs hold).
SWEEP_VALUES = {
    "dataset": ("quadrants", ["quadrants"]),
    "data_dir": (None, [None]),
    "label_column": (None, [None]),
    "test_split": (None, [None]),
    "image_size": (None, [None]),
    "normalize": ("none,standard", ["none", "standard"]),
    "nan": ("error", ["error"]),  # drop needs a file: quadrants is none
    "epochs": ("1,2", [1, 2]),
    "batch_size": ("2,4", [2, 4]),
    "hidden": ("4,3x2", [(4,), (3, 2)]),
    "activation": ("tanh,sigmoid", ["tanh", "sigmoid"]),
    "dropout": ("0,0.5", [0.0, 0.5]),
    "optimizer": ("sgd,adagrad", ["sgd", "adagrad"]),
    "lr": ("0.5", [0.5]),
    "loss": ("mse", ["mse"]),
    "seed": ("3,4", [3, 4]),
    "validation_split": ("0.25", [0.25]),
    "early_stopping": ("2,off", [2, None]),
    "lr_schedule": ("cosine,exponential", ["cosine", "exponential"]),
    "reduce_lr_on_plateau": ("true,false", [True, False]),
    "plateau_factor": ("0.5", [0.5]),
    "plateau_patience": ("1,2", [1, 2]),
    "metrics": ("accuracy,f1", [("accuracy", "f1_score")]),
}


def test_sweep_takes_every_training_flag_of_train_and_each_reaches_the_configs(capsys, monkeypatch):
    from mlpjax import sweep
    from mlpjax.cli.flags import flag
    from mlpjax.core.config import TrainConfig

    assert set(SWEEP_VALUES) == set(TrainConfig.flat_fields())  # a new field needs a value here
    train_flags = {flag(n) for n in TrainConfig.flat_fields()}
    assert train_flags <= options(command_parser("train")) and train_flags <= options(command_parser("sweep"))
    seen = []

    class Stop(Exception):
        pass

    def stop(configs, *a, **k):
        seen.extend(configs)
        raise Stop

    monkeypatch.setattr(sweep, "check_sweep_memory", stop)
    argv = [a for name, (text, _) in SWEEP_VALUES.items() if text is not None for a in (flag(name), text)]
    with pytest.raises(Stop):
        run_cli(capsys, "sweep", *argv)
    product = 1
    for name, (_, values) in SWEEP_VALUES.items():
        got = [
            getattr(c.model, name) if name in ("hidden", "activation", "dropout") else getattr(c, name) for c in seen
        ]
        assert sorted(set(got), key=str) == sorted(set(values), key=str), name  # every value, nothing else
        product *= len(values)
    assert len(seen) == product


def test_a_sweep_switch_alone_is_true_and_train_keeps_the_plain_switch(capsys, monkeypatch):
    from mlpjax import sweep

    seen = []
    monkeypatch.setattr(sweep, "check_sweep_memory", lambda configs, *a, **k: seen.extend(configs) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_cli(capsys, "sweep", "--dataset", "quadrants", "--reduce-lr-on-plateau")
    assert [c.reduce_lr_on_plateau for c in seen] == [True]
    code, _, err = run_cli(capsys, "sweep", "--dataset", "quadrants", "--reduce-lr-on-plateau", "maybe")
    assert code == 2 and "--reduce-lr-on-plateau" in err and "true or false" in err
    code, _, err = run_cli(capsys, "train", "--dataset", "quadrants", "--reduce-lr-on-plateau", "true")
    assert code == 2 and "unrecognized arguments: true" in err  # train's is a switch


def expected_defaults() -> dict[str, str]:
    """Each training field's default as help shows it, read from TrainConfig (None ones: the words that say
    what decides them, built from the registries)."""
    from mlpjax import data
    from mlpjax.core import optimizers
    from mlpjax.core.config import TrainConfig

    c = TrainConfig()
    return {
        "dataset": c.dataset,
        "batch_size": str(c.batch_size),
        "hidden": " ".join(map(str, c.model.hidden)),
        "activation": c.model.activation,
        "dropout": f"{c.model.dropout:g}",
        "optimizer": c.optimizer,
        "loss": c.loss,
        "seed": str(c.seed),
        "validation_split": f"{c.validation_split:g}",
        "early_stopping": "off",
        "lr_schedule": c.lr_schedule,
        "reduce_lr_on_plateau": "off",
        "plateau_factor": f"{c.plateau_factor:g}",
        "plateau_patience": str(c.plateau_patience),
        "metrics": ",".join(c.metrics),
        "epochs": ", ".join(f"{n} {s.default_epochs}" for n, s in data.DATASETS.items()),
        "lr": ", ".join(f"{n} {optimizers.default_learning_rate(n):g}" for n in optimizers.OPTIMIZERS),
        "data_dir": f"${data.DATA_DIR_ENV}",
    }


@pytest.mark.parametrize("command", ["train", "sweep", "summary"])
def test_help_shows_the_defaults_of_train_config(command):
    from mlpjax.cli.flags import flag

    parser = command_parser(command)
    fields = {a.dest: a for a in parser._actions if a.option_strings}
    checked = 0
    for name, default in expected_defaults().items():
        if name not in fields:
            continue
        one = " ".join(fields[name].help.replace("%%", "%").split())
        assert "default: " in one and default in one.split("default: ")[-1], (name, one)
        assert default in shown(parser)
        checked += 1
    assert checked == (4 if command == "summary" else len(expected_defaults()))
    assert flag("batch_size") not in shown(command_parser("summary"))


def test_help_says_what_the_commands_do():
    from mlpjax import bench, cli, data
    from mlpjax.core import model
    from mlpjax.experiments import discover
    from mlpjax.runs import logs

    top = cli.build_parser().format_help()
    assert "``" not in top and ":func:" not in top and ":mod:" not in top
    for command in cli.COMMANDS:
        assert command.NAME in top and " ".join(command.HELP.split()[:3]) in " ".join(top.split())
        assert " ".join(command.DESCRIPTION.split()[:8]) in shown(command_parser(command.NAME))
    assert "one model after another" in " ".join(top.split())  # a CPU trains a sweep's models in turn
    output = next(a.help for a in command_parser("train")._actions if "--output" in a.option_strings)
    for written in ("checkpoints", "metrics.json", logs.CSV, logs.TENSORBOARD, logs.CURVES):
        assert written in output
    assert f"(default: {bench.BenchConfig().rounds})" in shown(command_parser("bench"))
    summary = shown(command_parser("summary"))
    assert all(name in summary for name in (*data.DATASETS, *model.ACTIVATIONS))
    experiment = command_parser("experiment").format_help().splitlines()
    for name, question in discover().items():
        assert any(line.split()[:1] == [name] and question.split()[0] in line for line in experiment), name


def test_progress_bars_only_on_a_terminal(capsys, monkeypatch):
    import sys

    argv = ("train", "--dataset", "quadrants", "--epochs", "2", "--hidden", "4")
    code, out, err = run_cli(capsys, *argv)  # stderr is pytest's capture: no terminal
    assert code == 0 and "epoch 2/2:" in out and "step" not in err and "\r" not in err
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and "epoch 2/2:" in out and "epoch 2: 100%" in err


def test_every_command_module_keeps_the_protocol():
    import inspect

    from mlpjax import cli

    names = [command.NAME for command in cli.COMMANDS]
    assert len(set(names)) == len(names) and set(cli.EXIT_AT_ONCE) <= set(names)
    for command in cli.COMMANDS:
        # one module per command, named after it
        assert command.__name__ == f"mlpjax.cli.{command.NAME.replace('-', '_')}"
        assert "\n" not in command.HELP and command.DESCRIPTION.endswith(".")
        assert len(inspect.signature(command.add_arguments).parameters) == 1  # the command's parser
        assert len(inspect.signature(command.run).parameters) == 1  # its parsed flags


def test_flags_that_would_do_nothing_are_refused_in_one_line(capsys, tmp_path):
    """Issue 26, item 9: a data folder for a dataset that reads none, a plateau setting without the plateau."""
    run = tmp_path / "run"
    assert (
        run_cli(
            capsys, "train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet", "--output", run
        )[0]
        == 0
    )
    for argv in (["evaluate", run], ["predict", run, "--index", "0", "--out", tmp_path / "p.png"]):
        code, _, err = run_cli(capsys, *argv, "--data-dir", tmp_path)
        assert (
            code == 2
            and err
            == f"mlpjax {argv[0]}: error: --data-dir {tmp_path} is not read: dataset "
            "'quadrants' needs no folder (the tutorial's four points); drop --data-dir\n"
        ), err
    assert not (tmp_path / "p.png").exists()
    for argv in (["train", "--epochs", "1"], ["sweep", "--epochs", "1"]):
        code, _, err = run_cli(capsys, *argv, "--dataset", "digits", "--data-dir", tmp_path)
        assert (
            code == 2
            and err
            == f"mlpjax {argv[0]}: error: --data-dir {tmp_path} is not read: dataset "
            "'digits' needs no folder (scikit-learn's 8x8 digits (offline)); drop --data-dir\n"
        ), err
    for flag_, value in (("--plateau-factor", "0.5"), ("--plateau-patience", "3")):
        code, _, err = run_cli(capsys, "train", "--dataset", "quadrants", "--epochs", "1", flag_, value)
        assert (
            code == 2
            and err
            == f"mlpjax train: error: {flag_} {value} takes effect only with "
            f"--reduce-lr-on-plateau, which is off; turn that on, or drop {flag_}\n"
        ), err
    code, _, err = run_cli(capsys, "train", "--resume", run, "--plateau-patience", "3")  # the run has it off
    assert code == 2 and err.count("\n") == 1 and "--plateau-patience" in err, err
    code, _, err = run_cli(
        capsys, "sweep", "--dataset", "quadrants", "--plateau-factor", "0.5,0.25", "--reduce-lr-on-plateau", "false"
    )
    assert (
        code == 2
        and err
        == "mlpjax sweep: error: --plateau-factor 0.5,0.25 takes effect only with "
        "--reduce-lr-on-plateau, which is off; turn that on, or drop --plateau-factor\n"
    ), err
    assert (
        run_cli(
            capsys,
            "train",
            "--dataset",
            "quadrants",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--quiet",
            "--reduce-lr-on-plateau",
            "--plateau-factor",
            "0.5",
        )[0]
        == 0
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "x"], "mlpjax train: error: argument --epochs: expected an integer, got 'x'"),
        (["predict"], "mlpjax predict: error: the following arguments are required: DIR"),
        (
            ["sweep", "--strategy", "zz"],
            "mlpjax sweep: error: argument --strategy: invalid choice: 'zz' (choose from 'auto', 'vmap', 'sequential')",
        ),
        ([], "mlpjax: error: the following arguments are required: COMMAND"),
    ],
)
def test_argparse_errors_are_one_line_without_the_usage_block(capsys, argv, message):
    """Issue 26, item 10: argparse printed its 7-13-line usage block before its error line."""
    code, out, err = run_cli(capsys, *argv)
    prog = " ".join(["mlpjax", *argv[:1]])
    assert code == 2 and out == "" and err == f"{message}; {prog} --help lists what it takes\n", err


def test_a_learning_rate_float32_cannot_hold_is_one_line(capsys):
    """Issue 26, item 10: --lr 1e308 overflowed to inf in float32; JAX's warnings came before "diverged"."""
    code, out, err = run_cli(capsys, "train", "--dataset", "quadrants", "--epochs", "1", "--lr", "1e308")
    assert (
        code == 2
        and out == ""
        and err
        == "mlpjax train: error: --lr must be a positive number that float32 "
        "holds (from 1.4e-45 to 3.403e+38), got 1e+308\n"
    ), err


def test_summary_of_a_normalized_run_says_its_scaling(capsys, tmp_path):
    argv = ["--dataset", "iris", "--epochs", "1", "--hidden", "8", "--quiet", "--output"]
    assert run_cli(capsys, "train", *argv, tmp_path / "plain")[0] == 0
    assert run_cli(capsys, "train", *argv, tmp_path / "scaled", "--normalize", "minmax")[0] == 0
    code, plain, _ = run_cli(capsys, "summary", tmp_path / "plain")
    assert code == 0 and "scaling" not in plain
    code, scaled, _ = run_cli(capsys, "summary", tmp_path / "scaled")
    assert code == 0 and scaled.startswith(plain)
    assert scaled[len(plain) :] == (
        " Input scaling: --normalize minmax, (x - shift) / scale of the 4 features, fitted on the training rows and "
        "saved with the model (not trained; Keras: a Normalization layer first)\n"
    )
