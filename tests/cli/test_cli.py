import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli, write_idx


@pytest.mark.parametrize("argv, flag", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--dropout", "1.5"], "--dropout"),
    (["--lr", "abc"], "--lr"),
    (["--hidden", "0"], "--hidden"),
])
def test_nonsense_flags_exit_2_naming_the_flag(capsys, argv, flag):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", *argv)
    assert code == 2
    assert flag in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "adamw"], "unknown optimizer 'adamw'; valid: sgd, adam, adagrad"),
    (["--loss", "xent"], "unknown loss 'xent'; valid: categorical_crossentropy"),
    (["--activation", "gelu"], "unknown activation 'gelu'; valid: relu, sigmoid, step, tanh"),
    (["--dataset", "cifar"], "unknown dataset 'cifar'"),
])
def test_unknown_names_exit_2_with_the_valid_ones(capsys, argv, message):
    code, _, err = run_cli(capsys, "train", "--dataset", "digits", *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["draw", "-1e+16"], "mlpjax draw: error: unrecognized arguments: -1e+16; mlpjax draw --help lists what it "
                         "takes (a value that begins with '-' goes after '--')"),
    (["backprop", "extra"], "mlpjax backprop: error: unrecognized arguments: extra; "
                            "mlpjax backprop --help lists what it takes"),
])
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
    code, out, _ = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "3", "--hidden", "32",
                           "--quiet", "--output", str(tmp_path))
    assert code == 0
    assert "test accuracy" in out and "test sample 9: predicted" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["hidden"] == [32] and len(metrics["history"]["loss"]) == 3
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in out


def test_the_console_script_gives_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mlpjax.cli", "train", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"mlpjax train: error: {tmp_path}: missing train-images-idx3-ubyte.gz " \
        "(or train-images-idx3-ubyte); an MNIST-format folder holds train-images-idx3-ubyte.gz, " \
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"


def test_confusion_and_out_never_replace_a_file_and_an_empty_image_name_is_one_line(capsys, tmp_path):
    run = tmp_path / "run"
    code, _, _ = run_cli(capsys, "train", "--dataset", "quadrants", "--epochs", "1", "--hidden", "4", "--quiet",
                         "--output", run)
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
