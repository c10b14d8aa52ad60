"""A sweep's TensorBoard HParams data (mlpjax.sweep.hparams), read back without TensorBoard: tensorboardX's own
protobufs and the TFRecord framing (8-byte length, 4-byte CRC, the data, 4-byte CRC)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, tensorboard_events

from mlpjax.errors import UserInputError
from mlpjax.sweep import hparams

SMALL = ("--dataset", "digits", "--epochs", "2", "--batch-size", "32", "--hidden", "16", "--quiet")


def read_run(folder: Path) -> tuple[dict, dict, dict]:
    """The hparams (session start info), the scalars ``{tag: {step: value}}`` and the hparams plugin's other
    summaries (by tag) in the event files of one TensorBoard run folder."""
    from tensorboardX.proto import plugin_hparams_pb2

    found_hparams: dict = {}
    scalars: dict[str, dict[int, float]] = {}
    plugin: dict = {}
    events = tensorboard_events(folder)
    assert events, f"no event files in {folder}"
    for event in events:
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == "hparams":
                content = plugin_hparams_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                plugin[value.tag] = content
                if content.HasField("session_start_info"):
                    for name, v in content.session_start_info.hparams.items():
                        found_hparams[name] = getattr(v, v.WhichOneof("kind"))
            elif value.HasField("simple_value"):
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return found_hparams, scalars, plugin


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_sweep_writes_each_models_hparams_and_metrics(capsys, tmp_path, strategy):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli(
        capsys, "sweep", *SMALL, "--seed", "0,1", "--lr", "0.001,0.01", "--strategy", strategy, "--output", out
    )
    assert code == 0, err
    assert "tensorboard" in stdout
    runs = json.loads((out / "results.json").read_text())["runs"]
    folder = out / "tensorboard"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert names == ["model_0", "model_1", "model_2", "model_3"]
    assert not list(out.glob(".tensorboard*"))  # no temporary folder left
    for name, run in zip(names, runs, strict=True):
        got, scalars, plugin = read_run(folder / name)
        config = run["config"]
        assert got["seed"] == config["seed"] and got["lr"] == config["lr"]  # numbers, exactly
        assert got["hidden"] == "16" and got["optimizer"] == config["optimizer"] == "adam"
        assert sorted(got) == ["hidden", "lr", "optimizer", "seed"]  # the varied fields, and these always
        assert "_hparams_/experiment" in plugin and "_hparams_/session_end_info" in plugin
        metric_tags = [m.name.tag for m in plugin["_hparams_/experiment"].experiment.metric_infos]
        assert {"hparams/test_loss", "hparams/test_accuracy", "hparams/best_val_loss"} <= set(metric_tags)
        history = run["history"]
        want = {
            "hparams/test_loss": run["test_loss"],
            "hparams/test_accuracy": run["test_accuracy"],
            "hparams/best_val_loss": min(history["val_loss"]),
            "hparams/best_val_accuracy": max(history["val_accuracy"]),
            "hparams/train_loss": history["loss"][-1],
        }
        for tag, value in want.items():  # scalars are float32 in event files
            assert scalars[tag] == {2: np.float32(value)}, tag
        for key in ("loss", "val_accuracy"):  # the history's curves, one point per epoch
            assert scalars[key] == {e: np.float32(v) for e, v in enumerate(history[key], start=1)}


def test_hparams_keep_one_type_per_field_and_name_runs_in_order():
    from mlpjax.core.config import TrainConfig
    from mlpjax.sweep import ModelRun

    history = {"loss": [0.5], "accuracy": [0.9], "val_loss": [0.6], "val_accuracy": [0.8]}
    runs = [
        ModelRun(
            TrainConfig.from_dict({"dataset": "digits", "early_stopping": e, "hidden": h, "lr": lr}),
            history,
            {"loss": 0.6},
        )
        for e, h, lr in ((None, (8, 4), None), (3, (8,), 0.01))
    ]
    found = hparams.hparams(runs)
    assert [f["early_stopping"] for f in found] == ["off", "3"]  # None and a number: strings in both
    assert [f["hidden"] for f in found] == ["8x4", "8"] and [f["lr"] for f in found] == ["default", "0.01"]
    assert list(found[0]) == ["seed", "lr", "hidden", "optimizer", "early_stopping"]  # in the order sweeps list
    metrics = hparams.metrics(runs[0])
    assert metrics["hparams/test_loss"] == 0.6 and math.isnan(metrics["hparams/test_accuracy"])
    assert hparams.run_names(12)[:2] == ["model_00", "model_01"] and hparams.run_names(1) == ["model_0"]


def _result(epochs: int, models: int):
    from mlpjax.core.config import TrainConfig
    from mlpjax.sweep import ModelRun, SweepResult

    history = {
        "loss": [0.5] * epochs,
        "accuracy": [0.9] * epochs,
        "val_loss": [0.6] * epochs,
        "val_accuracy": [0.8] * epochs,
    }
    return SweepResult(
        [
            ModelRun(TrainConfig(dataset="digits", seed=i), history, {"loss": 0.6, "accuracy": 0.8})
            for i in range(models)
        ],
        [],
        "sequential",
        1.0,
    )


def test_a_full_disk_is_one_error_and_keeps_the_earlier_logs(tmp_path):
    """A real small tmpfs: tensorboardX's threaded SummaryWriter would wait forever here; the error is one line,
    the earlier tensorboard/ is kept and no temporary folder remains."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        folder = hparams.write(disk, _result(2, 1))
        before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        with pytest.raises(UserInputError, match="tensorboard: cannot write: no space left on the device"):
            hparams.write(disk, _result(200, 20))  # about 100 kB of events
        assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
        assert [p.name for p in disk.iterdir()] == ["tensorboard"]  # no temporary folder left
        assert hparams.write(disk, _result(3, 2)) == folder  # a later end replaces it
        assert sorted(p.name for p in folder.iterdir()) == ["model_0", "model_1"]
        assert [p.name for p in disk.iterdir()] == ["tensorboard"]
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
