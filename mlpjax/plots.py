"""Figures as PNG files, drawn with matplotlib's Agg renderer.

Each function builds a ``matplotlib.figure.Figure`` on its own ``FigureCanvasAgg`` (no pyplot, so no global
backend is switched and no figure is left open: safe beside a tkinter window), writes ``path`` and returns it.
Inputs are plain numpy arrays and Keras-style histories ``{"loss": [...], "accuracy": [...], "val_loss": [...],
"val_accuracy": [...]}`` (one value per epoch; ``val_*`` are measured on the validation data: the test set unless
a validation split is held out, and labelled "test" unless the caller names them otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter, MaxNLocator

from mlpjax import files

History = Mapping[str, Sequence[float]]
DPI = 100
_COLORS = colormaps["tab10"].colors  # type: ignore[attr-defined]  # tab10 is a ListedColormap
_LABELS = {"loss": "train loss", "accuracy": "train accuracy", "val_loss": "test loss", "val_accuracy": "test accuracy"}


class _PlainLog(Formatter):
    """Log-axis tick labels as plain numbers (0.02, not 2 x 10^-2), on the ticks ``inner`` would label."""

    def __init__(self, inner: Formatter):
        self.inner = inner

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs):
        self.inner.set_locs(locs)

    def __call__(self, x, pos=None):
        return f"{x:g}" if self.inner(x, pos) else ""


ZERO_DRAWN_AT = 1e-9  # where relative_differences draws a difference of 0


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | os.PathLike, *, replace: bool = True) -> Path:
    """Write ``fig`` as PNG to ``path`` (folders created) and return the path: atomically
    (:func:`mlpjax.files.write_atomic`), so that a full disk is a UserInputError naming ``path``, an earlier file
    there stays whole and no temporary file remains; ``replace`` False: an existing ``path`` is refused."""
    return files.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI), replace=replace)


def _as_runs(runs: Mapping[str, History | Sequence[History]]) -> dict[str, list[History]]:
    return {label: [h] if isinstance(h, Mapping) else list(h) for label, h in runs.items()}


CURVES_PANELS = (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")))
_MARK_STYLES = (":", "-.")  # the vertical lines of training_curves' marks, in turn


def training_curves(
    runs: Mapping[str, History | Sequence[History]],
    path: str | os.PathLike,
    *,
    panels: Sequence[tuple[str, Sequence[str]]] = CURVES_PANELS,
    title: str = "",
    key_labels: Mapping[str, str] | None = None,
    log_panels: Sequence[str] = (),
    marks: Mapping[str, int] | None = None,
) -> Path:
    """Curves per epoch from Keras-style histories into ``path``: :func:`curves_figure` saved as PNG."""
    return save(
        curves_figure(runs, panels=panels, title=title, key_labels=key_labels, log_panels=log_panels, marks=marks), path
    )


def curves_figure(
    runs: Mapping[str, History | Sequence[History]],
    *,
    panels: Sequence[tuple[str, Sequence[str]]] = CURVES_PANELS,
    title: str = "",
    key_labels: Mapping[str, str] | None = None,
    log_panels: Sequence[str] = (),
    marks: Mapping[str, int] | None = None,
) -> Figure:
    """Curves per epoch from Keras-style histories, one panel per ``(name, keys)`` of ``panels``.

    ``runs`` maps a label (one colour each) to one history or to several (e.g. one per seed: drawn as the
    mean with a band of ± one sample standard deviation). Keys starting with ``val_`` are drawn solid, the others
    dashed. Panels whose name is in ``log_panels`` use a log y-axis. ``marks`` maps a label to a 1-based epoch,
    drawn as a grey vertical line across every panel (e.g. ``{"best val_loss: epoch 3": 3}``).
    """
    runs = _as_runs(runs)
    names = {**_LABELS, **(key_labels or {})}
    fig = new_figure(5.0 * len(panels), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (panel, keys) in zip(axes, panels, strict=True):
        for color, (label, histories) in zip(_COLORS * 10, runs.items(), strict=False):
            for key in keys:
                values = np.array([h[key] for h in histories], dtype=float)  # (runs, epochs)
                epochs = np.arange(1, values.shape[1] + 1)
                mean = values.mean(axis=0)
                style = "-" if key.startswith("val_") or len(keys) == 1 else "--"
                ax.plot(
                    epochs,
                    mean,
                    style,
                    color=color,
                    lw=1.6,
                    marker="o" if len(epochs) <= 3 else None,
                    label=f"{label}: {names.get(key, key)}" if len(runs) == 1 else None,
                )
                if len(histories) > 1:
                    std = values.std(axis=0, ddof=1)
                    ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.2, lw=0)
        for style, (mark, epoch) in zip(_MARK_STYLES * 10, (marks or {}).items(), strict=False):
            ax.axvline(epoch, color="0.35", ls=style, lw=1.2, label=mark if len(runs) == 1 else None)
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if panel in log_panels:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(_PlainLog(ax.yaxis.get_major_formatter()))
            ax.yaxis.set_minor_formatter(_PlainLog(ax.yaxis.get_minor_formatter()))
        ax.grid(alpha=0.3)
        if len(runs) == 1:
            ax.legend(fontsize=8)
    if len(runs) > 1:  # one legend beside the panels: colours name the runs, line styles train and test
        handles = [
            Line2D([], [], color=c, lw=1.6, label=str(label)) for c, label in zip(_COLORS * 10, runs, strict=False)
        ]
        styled = [k for _, keys in panels if len(keys) > 1 for k in keys]
        for ls, is_val, default in (("--", False, "train"), ("-", True, "test")):
            keys = [k for k in styled if k.startswith("val_") == is_val]
            custom = sorted({key_labels[k] for k in keys if key_labels and k in key_labels})
            if keys:
                handles.append(Line2D([], [], color="0.3", ls=ls, label=" / ".join(custom) or default))
        fig.legend(handles=handles, loc="outside right center", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def image_grid(
    images: np.ndarray,
    path: str | os.PathLike,
    *,
    titles: Sequence[str] = (),
    image_shape: tuple[int, int] | None = None,
    ncols: int = 5,
    title: str = "",
    title_colors: Sequence[str] = (),
    cmap: str = "gray",
) -> Path:
    """A grid of grey images ``(N, H, W)`` (or flattened ``(N, H*W)`` with ``image_shape``), one title each."""
    images = np.asarray(images, dtype=float)
    if image_shape is not None:
        images = images.reshape(len(images), *image_shape)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = new_figure(1.6 * ncols, 1.8 * nrows + (0.4 if title else 0.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        if i < len(titles):
            ax.set_title(titles[i], fontsize=9, color=title_colors[i] if i < len(title_colors) else "black")
    if title:
        fig.suptitle(title)
    return save(fig, path)


def decision_regions(
    predict: Callable[[np.ndarray], np.ndarray],
    points: np.ndarray,
    labels: np.ndarray,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str],
    extent: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 301,
    queries: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """The class ``predict`` gives each point of the plane, with the training ``points`` ``(N, 2)`` on top.

    ``predict`` maps ``(M, 2)`` float32 coordinates to ``(M,)`` class indices. ``queries`` ``(K, 2)`` are
    extra points drawn as stars and annotated with their predicted class.
    """
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    classes = np.asarray(predict(grid)).reshape(gx.shape)
    k = len(class_names)
    colors = [_COLORS[i % len(_COLORS)] for i in range(k)]
    fig = new_figure(5.2, 4.8)
    ax = fig.subplots()
    ax.imshow(
        classes,
        origin="lower",
        extent=extent,
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=k - 0.5,
        alpha=0.3,
        interpolation="nearest",
        aspect="equal",
    )
    for c in range(k):
        pts = points[np.asarray(labels) == c]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=80, color=colors[c], edgecolor="black", zorder=3, label=f"class {class_names[c]}"
        )
        for p in pts:
            ax.annotate(
                f"{class_names[c]} ({p[0]:g}, {p[1]:g})", p, textcoords="offset points", xytext=(6, 6), fontsize=8
            )
    if queries is not None and len(queries):
        queries = np.asarray(queries, np.float32)
        for q, c in zip(queries, np.asarray(predict(queries)), strict=True):
            ax.scatter([q[0]], [q[1]], marker="*", s=220, color=colors[int(c)], edgecolor="black", zorder=4)
            ax.annotate(
                f"({q[0]:g}, {q[1]:g}) -> {class_names[int(c)]}",
                q,
                textcoords="offset points",
                xytext=(0, -18),
                ha="center",
                fontsize=8,
                weight="bold",
            )
    ax.axhline(0, color="0.5", lw=0.6)
    ax.axvline(0, color="0.5", lw=0.6)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    if title:
        ax.set_title(title)
    return save(fig, path)


def confusion_matrix(
    cm: np.ndarray,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] = (),
    title: str = "",
    replace: bool = True,
) -> Path:
    """A ``(C, C)`` confusion matrix (row: true class, column: predicted), counts written in every non-empty
    cell; the colour scale is logarithmic so that the few errors show beside the large diagonal. Saved by
    :func:`save` (``replace`` False: an existing ``path`` is refused)."""
    cm = np.asarray(cm)
    c = cm.shape[0]
    names = list(class_names) or [str(i) for i in range(c)]
    fig = new_figure(0.55 * c + 2.6, 0.55 * c + 1.6)
    ax = fig.subplots()
    shown = np.ma.masked_equal(cm.astype(float), 0.0)
    vmax = max(float(cm.max()), 2.0)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=0.7, vmax=vmax), interpolation="nearest")
    threshold = np.sqrt(vmax)  # the middle of the log scale
    for i in range(c):
        for j in range(c):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if cm[i, j] > threshold else "black",
                )
    ax.set_xticks(
        range(c),
        names,
        rotation=45 if max(len(n) for n in names) > 2 else 0,
        ha="right" if max(len(n) for n in names) > 2 else "center",
    )
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="count (log scale)", shrink=0.8)
    if title:
        ax.set_title(title)
    return save(fig, path, replace=replace)


def activation_functions(
    functions: Mapping[str, Callable[[Any], Any]],
    path: str | os.PathLike,
    *,
    derivatives: Mapping[str, Callable[[Any], Any]] | None = None,
    x_range: tuple[float, float] = (-5.0, 5.0),
    title: str = "",
) -> Path:
    """One panel per activation ``f(x)`` on ``x_range`` (solid), with its derivative dashed if given."""
    x = np.linspace(*x_range, 1001, dtype=np.float32)
    fig = new_figure(3.6 * len(functions), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(functions)))
    for ax, (name, fn) in zip(axes, functions.items(), strict=True):
        ax.plot(x, np.asarray(fn(x)), color=_COLORS[0], lw=2, label=f"{name}(x)")
        if derivatives and name in derivatives:
            ax.plot(x, np.asarray(derivatives[name](x)), "--", color=_COLORS[3], lw=1.5, label=f"d{name}/dx")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.axvline(0, color="0.5", lw=0.6)
        ax.set_title(name)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    return save(fig, path)


def relative_differences(
    series: Mapping[str, Sequence[float]], path: str | os.PathLike, *, tolerance: float, title: str = ""
) -> Path:
    """Relative differences per epoch on a log axis, one line per ``series`` entry (label -> values; labels
    sharing their text before ``": "`` share a colour, ``train`` dashed), with ``tolerance`` as a dotted line.
    A difference of 0 (bit-identical) is drawn at :data:`ZERO_DRAWN_AT`."""
    fig = new_figure(6.0, 3.8)
    ax = fig.subplots()
    groups = list(dict.fromkeys(label.split(": ")[0] for label in series))
    for label, values in series.items():
        values = np.maximum(np.asarray(values, dtype=float), ZERO_DRAWN_AT)
        ax.plot(
            np.arange(1, len(values) + 1),
            values,
            "--" if "train" in label else "-",
            marker="o",
            color=_COLORS[groups.index(label.split(": ")[0]) % len(_COLORS)],
            label=label,
        )
    ax.axhline(tolerance, color="0.4", lw=1, ls=":", label=f"{tolerance:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"relative difference (0 drawn at {ZERO_DRAWN_AT:g})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return save(fig, path)


def grouped_bars(
    values: Mapping[str, Mapping[str, Sequence[float]]], path: str | os.PathLike, *, ylabel: str, title: str = ""
) -> Path:
    """Bars of the mean of ``values[group][series]`` (one cluster per group, one color per series), with the
    sample standard deviation as an error bar where a series holds several values."""
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    width = 0.8 / max(len(series), 1)
    fig = new_figure(max(4.0, 1.8 * len(groups) + 1.5), 3.4)
    ax = fig.subplots()
    for i, name in enumerate(series):
        data = [np.asarray(values[g].get(name, [np.nan]), dtype=float) for g in groups]
        means = [d.mean() for d in data]
        errors = [d.std(ddof=1) if len(d) > 1 else 0.0 for d in data]
        x = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        ax.bar(x, means, width, yerr=errors, capsize=3, color=_COLORS[i % len(_COLORS)], label=name)
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return save(fig, path)
