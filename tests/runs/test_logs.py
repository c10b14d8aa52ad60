"""Logs beside metrics.json: history.csv (Keras' CSVLogger), TensorBoard events, learning_curves.png."""

import csv

import numpy as np
import pytest
from conftest import run_cli, tensorboard_events

from mlpjax.core.model import ModelConfig
from mlpjax.errors import UserInputError
from mlpjax.runs import logs


def read_events(folder):
    """Every (tag, step, kind) in the tensorboardX event files under ``folder``."""
    return [
        (value.tag, event.step, "image" if value.HasField("image") else "scalar")
        for event in tensorboard_events(folder)
        for value in event.summary.value
    ]


def test_csv_has_keras_columns_one_row_per_epoch():
    history = {
        "loss": [1.0, 0.5],
        "accuracy": [0.1, 0.2],
        "val_loss": [1.1, 0.6],
        "val_accuracy": [0.1, 0.3],
        "lr": [0.001, 0.001],
        "val_mse": [0.2, 0.1],
        "val_f1_score": [0.1, 0.2],
    }
    rows = list(csv.reader(logs.csv_text(history).splitlines()))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "val_f1_score", "val_mse"]
    assert rows[1][0] == "0" and float(rows[2][1]) == 0.5 and len(rows) == 3


def test_kernel_images_scale_each_unit_to_0_1():
    kernel = np.arange(784 * 3, dtype=np.float32).reshape(784, 3)
    kernel[:, 2] = 7.0
    images = logs.kernel_images(kernel, (28, 28), units=16)
    assert images.shape == (3, 1, 28, 28) and images.min() == 0.0 and images[0].max() == 1.0
    assert np.all(images[2] == 0.5)
    np.testing.assert_allclose(images[1, 0].ravel(), (kernel[:, 1] - kernel[:, 1].min()) / 2349, rtol=1e-5)


@pytest.mark.slow
def test_train_output_writes_the_logs_and_a_resume_extends_them(capsys, tmp_path, idx_folder):
    out = tmp_path / "run"
    args = ("train", "--data-dir", idx_folder, "--hidden", "8", "--batch-size", "16", "--quiet", "--output", out)
    code, _, err = run_cli(capsys, *args, "--epochs", "1")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--resume", out, "--epochs", "2", "--quiet")
    assert code == 0, err
    rows = list(csv.DictReader((out / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1"] and float(rows[1]["lr"]) == 1e-3
    events = read_events(out / "tensorboard")
    assert {("val_loss", 1, "scalar"), ("val_loss", 2, "scalar"), ("lr", 2, "scalar")} <= set(events)
    assert ("hidden_0/kernel", 2, "image") in events  # 28x28 inputs: the first layer's weights as images
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".learning_curves*"))


def test_learning_curves_are_replaced_atomically(tmp_path):
    history = {
        "loss": [1.0, 0.5],
        "accuracy": [0.1, 0.2],
        "val_loss": [1.1, 0.6],
        "val_accuracy": [0.1, 0.3],
        "lr": [0.1, 0.01],
    }
    path = logs.learning_curves(history, tmp_path / "curves.png", validation="split")
    first = path.read_bytes()
    logs.learning_curves({k: v[:1] for k, v in history.items()}, path)
    assert path.read_bytes() != first and [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_run_logs_draw_the_latest_history_and_close_waits_for_it(tmp_path):
    class State:
        model_config = ModelConfig(input_dim=4, hidden=(3,))
        params = {"hidden_0": {"kernel": np.zeros((4, 3), np.float32)}}

    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "lr": []}
    run_logs = logs.RunLogs(tmp_path, image_shape=(8, 8))  # 4 inputs: no weight images
    for epoch in range(1, 4):
        for key in history:
            history[key].append(1.0 / epoch)
        run_logs.epoch_end(epoch, State(), history)
    run_logs.close()
    assert (tmp_path / logs.CURVES).read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / logs.CSV).read_text().splitlines()) == 4
    assert {tag for tag, _, _ in read_events(tmp_path / logs.TENSORBOARD)} == set(history)


def test_an_error_while_drawing_is_raised_by_close(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run_logs = logs.RunLogs(tmp_path)
    run_logs.directory = blocker  # a file where the figure's folder should be
    redrawer = logs._Redrawer(run_logs._draw)
    redrawer.submit({"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0], "val_accuracy": [0.5]})
    with pytest.raises(UserInputError, match="file"):  # files.write_atomic's one line, naming the path
        redrawer.close()


def test_the_figure_marks_the_best_and_the_kept_epoch():
    history = {"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [1.0, 0.5, 0.5, 0.9]}
    assert logs.marks(history) == {"best val_loss: epoch 2": 2, "kept weights: epoch 4": 4}  # first of the lowest
    assert logs.marks(history, kept_epoch=2) == {"best val_loss, kept weights: epoch 2": 2}  # early stopping
    assert logs.marks({"loss": [], "val_loss": []}) == {}
    assert logs.marks({"loss": [1.0, 2.0], "val_loss": [float("nan"), float("nan")]}) == {"kept weights: epoch 2": 2}


def test_learning_curves_draw_the_marks_and_follow_the_umask(tmp_path, monkeypatch):
    import os

    from mlpjax import plots

    drawn = {}
    real = plots.curves_figure

    def spy(runs, **kwargs):
        figure = real(runs, **kwargs)
        drawn["lines"] = [(line.get_label(), list(line.get_xdata())) for line in figure.axes[0].get_lines()]
        return figure

    monkeypatch.setattr(plots, "curves_figure", spy)
    history = {
        "loss": [1.0, 0.5, 0.4],
        "accuracy": [0.1, 0.2, 0.3],
        "val_loss": [1.1, 0.6, 0.7],
        "val_accuracy": [0.1, 0.3, 0.2],
    }
    old = os.umask(0o027)
    try:
        path = logs.learning_curves(history, tmp_path / "curves.png", kept_epoch=2)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640 and path.read_bytes()[:4] == b"\x89PNG"
    assert ("best val_loss, kept weights: epoch 2", [2, 2]) in drawn["lines"]


def test_run_logs_finish_redraws_with_the_kept_epoch(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(logs, "learning_curves", lambda history, path, **kw: calls.append(kw["kept_epoch"]))
    run_logs = logs.RunLogs(tmp_path)
    run_logs.redrawer = logs._Redrawer(run_logs._draw)
    run_logs.history = {"loss": [1.0, 0.5], "val_loss": [0.4, 0.6]}
    run_logs.finish(1)
    run_logs.close()
    assert calls[-1] == 1
