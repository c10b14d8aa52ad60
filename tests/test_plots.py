"""The figures: each is a real, non-blank PNG of the expected layout."""

from __future__ import annotations

import numpy as np
from conftest import assert_png
from PIL import Image

from mlpjax import plots


def history(epochs: int, offset: float = 0.0) -> dict[str, list[float]]:
    t = np.arange(1, epochs + 1)
    return {
        "loss": list(1 / t + offset),
        "accuracy": list(1 - 0.5 / t - offset),
        "val_loss": list(1.2 / t + offset),
        "val_accuracy": list(0.95 - 0.5 / t - offset),
    }


def test_training_curves_single_multi_seed_and_log_panel(tmp_path):
    out = plots.training_curves(
        {"seeds": [history(5), history(5, 0.01), history(5, 0.02)], "other": history(5)},
        tmp_path / "sub" / "curves.png",
        log_panels=("loss",),
        title="t",
    )
    assert out == tmp_path / "sub" / "curves.png"
    assert_png(out)
    single = plots.training_curves({"run": history(1)}, tmp_path / "one.png", panels=(("loss", ("loss",)),))
    assert_png(single)


def test_image_grid_flattened_and_titles(tmp_path):
    images = np.random.default_rng(0).random((7, 64)).astype(np.float32)
    out = plots.image_grid(
        images,
        tmp_path / "grid.png",
        image_shape=(8, 8),
        titles=[str(i) for i in range(7)],
        ncols=3,
        title_colors=["red"] * 7,
        title="seven",
    )
    assert_png(out)
    with Image.open(out) as im:
        assert im.size[1] > im.size[0]  # 3 rows of 3 columns plus a title: taller than wide


def test_decision_regions_calls_predict_on_the_plane(tmp_path):
    seen = []

    def predict(xy):
        seen.append(xy)
        assert xy.ndim == 2 and xy.shape[1] == 2 and xy.dtype == np.float32
        return (xy[:, 0] < 0).astype(int) + 2 * (xy[:, 1] < 0)

    points = np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]], np.float32)
    out = plots.decision_regions(
        predict,
        points,
        np.array([0, 1, 2, 3]),
        tmp_path / "regions.png",
        class_names=["a", "b", "c", "d"],
        resolution=51,
        queries=np.array([[2.0, 2.0]]),
        title="quadrants",
    )
    assert_png(out)
    assert seen[0].shape == (51 * 51, 2)
    assert seen[0][:, 0].min() == -3.0 and seen[0][:, 0].max() == 3.0


def test_confusion_matrix_and_activation_functions(tmp_path):
    cm = np.diag([50, 40, 30]) + np.array([[0, 2, 0], [1, 0, 0], [0, 5, 0]])
    assert_png(plots.confusion_matrix(cm, tmp_path / "cm.png", class_names=["x", "y", "z"], title="cm"))
    assert_png(
        plots.activation_functions(
            {"relu": lambda x: np.maximum(x, 0), "id": lambda x: x},
            tmp_path / "act.png",
            derivatives={"relu": lambda x: (x > 0) * 1.0},
        )
    )


def test_relative_differences_with_zeros_on_a_log_axis(tmp_path):
    out = plots.relative_differences(
        {
            "vmap: train loss": [0.0, 1e-4, 3e-3],
            "vmap: test loss": [1e-7, 1e-3, 1e-2],
            "one ulp: train loss": [0.0, 0.0, 2e-3],
        },
        tmp_path / "drift.png",
        tolerance=1e-5,
        title="t",
    )
    assert_png(out)


def test_curves_figure_draws_each_mark_across_every_panel(tmp_path):
    figure = plots.curves_figure({"run": history(4)}, marks={"best val_loss: epoch 2": 2, "kept weights: epoch 4": 4})
    for ax in figure.axes:
        vertical = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines() if "epoch" in line.get_label()}
        assert vertical == {"best val_loss: epoch 2": [2, 2], "kept weights: epoch 4": [4, 4]}
    assert_png(plots.training_curves({"run": history(4)}, tmp_path / "marked.png", marks={"best": 2}))
