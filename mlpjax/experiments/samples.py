"""The data the tutorial trains on: the first 20 training images with their labels, and the arrays' shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpjax import plots
from mlpjax.experiments import common

QUESTION = "What do the training images look like, and what shapes does the network see?"
ORDER = 10  # the place of its question in the tutorial
COUNT = 20


def run(out_dir: Path, *, quick: bool, data_dir: str | None, seed: int, log: common.Log) -> common.Report:
    """No training and no randomness (``seed`` unused): the dataset is read in file order."""
    ds = common.load_data(data_dir, quick, slice_quick=False)
    shape = ds.image_shape or (1, ds.input_dim)
    labels = [int(v) for v in ds.y_train[:COUNT]]
    plots.image_grid(ds.x_train[:COUNT], out_dir / "samples.png", image_shape=shape,
                     titles=[f"label {v}" for v in labels], ncols=5,
                     title=f"The first {COUNT} training images of {ds.name}")
    shapes = {k: list(getattr(ds, k).shape) for k in ("x_train", "y_train", "x_test", "y_test")}
    for key, value in shapes.items():
        log(f"{key}: {tuple(value)} {getattr(ds, key).dtype}")
    counts = {split: np.bincount(getattr(ds, f"y_{split}"), minlength=ds.num_classes).tolist()
              for split in ("train", "test")}
    pixel_range = [float(ds.x_train.min()), float(ds.x_train.max())]
    log(f"first {COUNT} labels: {labels}; pixels in [{pixel_range[0]:g}, {pixel_range[1]:g}]")
    results = {"shapes": shapes, "image_shape": list(shape), "dtypes": {"x": str(ds.x_train.dtype),
               "y": str(ds.y_train.dtype)}, "pixel_range": pixel_range, "first_labels": labels,
               "class_counts": counts}
    shape_rows = [[key, f"({', '.join(map(str, value))})", str(getattr(ds, key).dtype)]
                  for key, value in shapes.items()]
    count_rows = [[split] + counts[split] + [sum(counts[split])] for split in ("train", "test")]
    findings = [
        f"{shapes['x_train'][0]} training and {shapes['x_test'][0]} test images of {shape[0]}x{shape[1]} "
        f"pixels, flattened to {ds.input_dim} features in [{pixel_range[0]:g}, {pixel_range[1]:g}] "
        f"(divided by 255 for MNIST); labels are integers 0-{ds.num_classes - 1}, one-hot encoded by the loss.",
        f"The first {COUNT} labels are {labels}.",
    ]
    return common.Report(
        results=results,
        tables=[common.Table("Shapes", ["array", "shape", "dtype"], shape_rows),
                common.Table("Images per class", ["split"] + [str(c) for c in range(ds.num_classes)] + ["total"],
                             count_rows)],
        figures={"samples.png": f"The first {COUNT} training images of {ds.name} with their labels."},
        findings=findings, dataset=common.describe(ds), budget={"images shown": COUNT})
