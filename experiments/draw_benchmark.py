"""Benchmark: MNIST test digits redrawn as a person draws them in ``mlpjax draw``, recognised two ways.

Each test digit is put on a 280x280 white canvas in black, the way a person would draw it there: a random
size (its longer side from 20% to 95% of the canvas), a random position (wholly on the canvas), and a random
stroke width (4 to 32 px, around the window's 20 px brush), with hard black-on-white pixels like the window's
own canvas image. The same trained model then reads each canvas through ``naive_resize`` (the tutorial's
squash to 28x28) and through ``canvas_to_mnist`` (MNIST's size normalisation and centring), and through
nothing (the clean 28x28 test digit), and the three accuracies are printed.

    python experiments/draw_benchmark.py --data-dir /work/shared/data/mnist [--n 2000] [--model DIR]

Without ``--model`` it trains the tutorial's MLP for 2 epochs (``train.fit``, seed 0). Randomness: the
redrawing uses ``numpy.random.default_rng(--seed)``; the digits are the first ``--n`` of the test set.
Needs scipy (installed with scikit-learn) for the stroke-width morphology.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from mlpjax import data
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.draw import preprocess
from mlpjax.training import train

CANVAS = 280
MNIST_STROKE = 2.5  # typical MNIST stroke width in the 20x20 box, pixels


def redraw(
    digit: np.ndarray, rng: np.random.Generator, canvas: int = CANVAS, size_range=(0.2, 0.95), stroke_range=(4.0, 32.0)
) -> tuple[np.ndarray, dict]:
    """One ``(28, 28)`` white-on-black digit as a ``(canvas, canvas)`` uint8 black-on-white drawing.

    Consumes ``rng``: size, stroke width, then position. Returns the canvas and what was drawn.
    """
    mask = digit > 0.1
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    size = rng.uniform(*size_range) * canvas  # the longer side, canvas pixels
    scale = size / max(h, w)
    stroke = rng.uniform(*stroke_range)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    big = np.asarray(Image.fromarray(crop.astype(np.float32)).resize((new_w, new_h), Image.Resampling.BILINEAR))
    pad = int(stroke) + 2
    ink = np.pad(big > 0.5, pad)
    # grow (dilate) or thin (erode) the upscaled strokes by a disc, from their width ~ MNIST_STROKE * scale
    change = (stroke - MNIST_STROKE * scale) / 2.0
    if change > 0:
        ink = ndimage.distance_transform_edt(~ink) <= change
    elif change < 0:
        depth = ndimage.distance_transform_edt(ink)
        thinned = depth > -change
        # never erase the digit: thin at most until a third of its ink is left
        while thinned.sum() < ink.sum() / 3 and change < -0.5:
            change /= 2
            thinned = depth > -change
        ink = thinned if thinned.any() else ink
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ih, iw = ink.shape
    if ih > canvas or iw > canvas:  # a thick stroke on a near-full-size digit: shrink to fit
        factor = canvas / max(ih, iw)
        ink = np.asarray(Image.fromarray(ink).resize((max(1, int(iw * factor)), max(1, int(ih * factor)))))
        ih, iw = ink.shape
    top, left = int(rng.integers(0, canvas - ih + 1)), int(rng.integers(0, canvas - iw + 1))
    out = np.full((canvas, canvas), 255, np.uint8)
    out[top : top + ih, left : left + iw][ink] = 0
    return out, {"size": size, "stroke": stroke, "top": top, "left": left}


def save_examples(path: Path, canvases, naive, mnist_style, count: int = 8) -> None:
    """A strip of examples: per column the canvas (shrunk to 140 px), naive_resize and canvas_to_mnist (x5)."""
    tile = 140
    sheet = Image.new("L", (count * (tile + 10) + 10, 3 * (tile + 10) + 10), 128)
    for i in range(min(count, len(canvases))):
        x = 10 + i * (tile + 10)
        sheet.paste(Image.fromarray(canvases[i]).resize((tile, tile), Image.Resampling.BOX), (x, 10))
        for row, img in ((1, naive[i]), (2, mnist_style[i])):
            small = Image.fromarray((img * 255).astype(np.uint8)).resize((tile, tile), Image.Resampling.NEAREST)
            sheet.paste(small, (x, 10 + row * (tile + 10)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $MLPJAX_DATA_DIR)")
    p.add_argument("--model", metavar="DIR", help="a saved model (mlpjax train --output DIR); default: train 2 epochs")
    p.add_argument("--n", type=int, default=2000, help="test digits to redraw (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the redrawing (default: 0)")
    p.add_argument("--examples", metavar="PNG", help="also save a strip of example canvases and their 28x28 images")
    args = p.parse_args(argv)

    dataset = data.load_dataset("mnist", args.data_dir)
    if args.model:
        from mlpjax.runs.checkpoint import load_model

        clf = load_model(args.model)
        print(f"model: {args.model}")
    else:
        t0 = time.perf_counter()
        result = train.fit(TrainConfig(dataset="mnist", epochs=2, seed=0), dataset)
        clf = model.Classifier(result.state.params, result.state.model_config)
        print(
            f"model: trained 2 epochs in {time.perf_counter() - t0:.1f} s, "
            f"full test accuracy {result.test_metrics['accuracy']:.4f}"
        )

    n = min(args.n, len(dataset.y_test))
    digits, labels = dataset.x_test[:n].reshape(n, 28, 28), dataset.y_test[:n]
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    drawn = [redraw(d, rng) for d in digits]
    canvases = [c for c, _ in drawn]
    sizes = np.array([info["size"] / CANVAS for _, info in drawn])
    strokes = np.array([info["stroke"] for _, info in drawn])
    naive = np.stack([preprocess.naive_resize(c) for c in canvases])
    mnist_style = np.stack([preprocess.canvas_to_mnist(c) for c in canvases])
    seconds = time.perf_counter() - t0

    correct = {
        name: clf.predict(images.reshape(n, -1)) == labels
        for name, images in (("clean", digits), ("naive", naive), ("mnist", mnist_style))
    }
    clean, acc_naive, acc_mnist = (float(correct[k].mean()) for k in ("clean", "naive", "mnist"))
    print(f"{n} MNIST test digits redrawn on a {CANVAS}x{CANVAS} canvas (seed {args.seed}, {seconds:.1f} s):")
    print(f"  clean 28x28 test digits:       accuracy {clean:.4f}")
    print(f"  naive_resize (tutorial):       accuracy {acc_naive:.4f}")
    print(f"  canvas_to_mnist (MNIST-style): accuracy {acc_mnist:.4f}")
    print("  accuracy by drawn size (longer side / canvas) and stroke width (px):")
    print(f"    {'':28s} {'naive':>7s} {'MNIST-style':>12s} {'clean':>7s}")
    for name, values, edges in (("size", sizes, (0.2, 0.45, 0.7, 0.95)), ("stroke", strokes, (4, 12, 20, 32))):
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            sel = (values >= lo) & (values < hi)
            label = f"{name} {lo}-{hi} ({sel.sum()} digits)"
            print(
                f"    {label:28s} {correct['naive'][sel].mean():7.4f} {correct['mnist'][sel].mean():12.4f} "
                f"{correct['clean'][sel].mean():7.4f}"
            )
    if args.examples:
        save_examples(Path(args.examples), canvases, naive, mnist_style)
        print(f"wrote {args.examples}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
