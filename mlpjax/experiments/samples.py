"""The data the tutorial trains on: the first 20 training images with their labels, and the arrays' shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpjax import data, plots
from mlpjax.experiments import common

QUESTION = "What do the training images look like, and what shapes does the network see?"
ORDER = 10  # the place of its question in the tutorial
COUNT = 20


def run(out_dir: Path, *, quick: bool, source: common.DataChoice, seed: int, log: common.Log) -> common.Report:
    """No training and no randomness (``seed`` unused): the dataset is read in file order."""
    ds = common.load_data(source, quick, slice_quick=False)
    shape = ds.image_shape or (1, ds.input_dim)
    labels = [int(v) for v in ds.y_train[:COUNT]]
    # the float32 features of the images shown, not of all of them (x_train would be 180 MB for MNIST)
    first = data.features(ds.encoded_train[:COUNT], ds.pixel_levels)
    plots.image_grid(
        first,
        out_dir / "samples.png",
        image_shape=shape,
        titles=[f"label {v}" for v in labels],
        ncols=5,
        title=f"The first {COUNT} training images of {ds.name}",
    )
    shapes = {
        "x_train": list(ds.encoded_train.shape),
        "y_train": list(ds.y_train.shape),
        "x_test": list(ds.encoded_test.shape),
        "y_test": list(ds.y_test.shape),
    }
    dtypes = {"x_train": first.dtype, "y_train": ds.y_train.dtype, "x_test": first.dtype, "y_test": ds.y_test.dtype}
    for key, value in shapes.items():
        log(f"{key}: {tuple(value)} {dtypes[key]}")
    counts = {
        split: np.bincount(getattr(ds, f"y_{split}"), minlength=ds.num_classes).tolist() for split in ("train", "test")
    }
    ends = np.array([ds.encoded_train.min(), ds.encoded_train.max()])  # features grow with the encoded levels
    pixel_range = [float(v) for v in data.features(ends, ds.pixel_levels)]
    log(f"first {COUNT} labels: {labels}; pixels in [{pixel_range[0]:g}, {pixel_range[1]:g}]")
    results = {
        "shapes": shapes,
        "image_shape": list(shape),
        "dtypes": {"x": str(first.dtype), "y": str(ds.y_train.dtype)},
        "pixel_range": pixel_range,
        "first_labels": labels,
        "class_counts": counts,
    }
    shape_rows = [[key, f"({', '.join(map(str, value))})", str(dtypes[key])] for key, value in shapes.items()]
    count_rows = [[split] + counts[split] + [sum(counts[split])] for split in ("train", "test")]
    findings = [
        f"{shapes['x_train'][0]} training and {shapes['x_test'][0]} test images of {shape[0]}x{shape[1]} "
        f"pixels, flattened to {ds.input_dim} features in [{pixel_range[0]:g}, {pixel_range[1]:g}] "
        f"(divided by 255 for MNIST); labels are integers 0-{ds.num_classes - 1}, one-hot encoded by the loss.",
        f"The first {COUNT} labels are {labels}.",
    ]
    return common.Report(
        results=results,
        tables=[
            common.Table("Shapes", ["array", "shape", "dtype"], shape_rows),
            common.Table(
                "Images per class", ["split"] + [str(c) for c in range(ds.num_classes)] + ["total"], count_rows
            ),
        ],
        figures={"samples.png": f"The first {COUNT} training images of {ds.name} with their labels."},
        findings=findings,
        dataset=common.describe(ds),
        budget={"images shown": COUNT},
    )
