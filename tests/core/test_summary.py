"""mlpjax summary (Keras' model.summary()) and evaluate --confusion."""

import json

import pytest
from conftest import run_cli, small_config, state_for, toy_dataset

from mlpjax.core import model, summary
from mlpjax.core.config import TrainConfig


def test_the_tutorials_model_has_407050_parameters_as_keras_says():
    mc = TrainConfig().model_config(784, 10)
    text = summary.summary(mc)
    assert "Total params: 407,050 (1.55 MB)" in text
    assert [(l.name, l.kind, l.units, l.params) for l in summary.layers(mc)] == [
        ("dense", "Dense", 512, 401920),
        ("dropout", "Dropout", 512, 0),
        ("dense_1", "Dense", 10, 5130),
    ]
    assert "dense (Dense)" in text and "(None, 512)" in text and "401,920" in text


def test_the_count_is_the_params_count():
    config = small_config(hidden=(16, 8), dropout=0.0)
    state = state_for(config, toy_dataset())
    assert summary.total_params(state.model_config) == model.param_count(state.params)
    assert [l.kind for l in summary.layers(state.model_config)] == ["Dense"] * 3


@pytest.mark.slow
def test_summary_command_from_flags_or_a_run(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "summary")
    assert code == 0 and "Total params: 407,050" in out
    code, out, _ = run_cli(capsys, "summary", "--dataset", "digits", "--hidden", "32")
    assert code == 0 and f"Total params: {64 * 32 + 32 + 33 * 10:,}" in out
    code, _, err = run_cli(
        capsys,
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--output",
        tmp_path / "run",
        "--validation-split",
        "0.1",
    )
    assert code == 0, err
    code, out, _ = run_cli(capsys, "summary", tmp_path / "run")
    assert code == 0 and "Total params: 2,410" in out
    code, _, err = run_cli(capsys, "summary", tmp_path / "run", "--hidden", "8")
    assert code == 2 and "--hidden" in err and len(err.strip().splitlines()) == 1

    code, out, err = run_cli(capsys, "evaluate", tmp_path / "run", "--confusion", tmp_path / "cm.png")
    assert code == 0, err
    assert "precision  recall  support" in out and len([l for l in out.splitlines() if l[:1].isdigit()]) == 10
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run_cli(capsys, "evaluate", tmp_path / "run", "--json")
    report = json.loads(out)
    assert sum(map(sum, report["confusion"])) == 450 and len(report["per_class"]["recall"]) == 10


def test_train_prints_the_summary_and_where_val_is_measured(capsys):
    code, out, _ = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1", "--hidden", "32")
    assert code == 0 and "Total params: 2,410" in out and "val_* is measured on the test set" in out
    code, out, _ = run_cli(
        capsys,
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--quiet",
        "--validation-split",
        "0.25",
    )
    assert code == 0 and "Total params" not in out and "the last 337 training examples" in out


def test_bad_keras_flags_are_one_line_naming_the_flag(capsys):
    for argv, named in [
        (("--early-stopping", "-1"), "--early-stopping"),
        (("--metrics", "auc"), "--metrics"),
        (("--lr-schedule", "step"), "--lr-schedule"),
        (("--plateau-factor", "2"), "--plateau-factor"),
        (("--validation-split", "1"), "--validation-split"),
    ]:
        code, _, err = run_cli(capsys, "train", "--dataset", "digits", *argv)
        assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err
