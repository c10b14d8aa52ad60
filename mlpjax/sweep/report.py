"""What a sweep leaves in its output folder: ``results.json``, ``summary.md`` (mean ± std over seeds per
setting) and ``curves.png`` (test curves per setting, mean with a ± std band)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from mlpjax import plots
from mlpjax import files
from mlpjax.sweep.train import LISTED, ModelRun, SweepResult

RESULTS, SUMMARY, CURVES = "results.json", "summary.md", "curves.png"


def varied(runs: Sequence[ModelRun]) -> list[str]:
    """The flat fields of :data:`mlpjax.sweep.train.LISTED` that take more than one value among ``runs``."""
    values = {name: {str(r.config.to_dict()[name]) for r in runs} for name in LISTED}
    return [name for name in LISTED if len(values[name]) > 1]


def setting_label(run: ModelRun, fields: Sequence[str]) -> str:
    """``"lr 0.001, dropout 0.2"``: the values of ``fields`` (seed excluded) of ``run``'s config."""
    d = run.config.to_dict()
    shown = [f"{name} {'x'.join(map(str, d[name])) if name == 'hidden' else d[name]}" for name in fields
             if name != "seed"]
    return ", ".join(shown) or "all"


def settings(runs: Sequence[ModelRun]) -> dict[str, list[ModelRun]]:
    """``runs`` by setting (:func:`setting_label` of the varied fields), in order of first appearance."""
    fields = varied(runs)
    found: dict[str, list[ModelRun]] = {}
    for run in runs:
        found.setdefault(setting_label(run, fields), []).append(run)
    return found


def _pm(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return f"{float(v.mean()):.4f} ± {std:.4f}"


def summary_markdown(result: SweepResult) -> str:
    """The table of ``summary.md``: per setting, the seeds and mean ± sample std of the final figures."""
    lines = [f"# Sweep: {len(result.runs)} models in {len(result.groups)} group(s), strategy {result.strategy}, "
             f"{result.seconds:.1f} s", "",
             "| setting | seeds | test accuracy | test loss | train loss | diverged |", "|---|---|---|---|---|---|"]
    for label, runs in settings(result.runs).items():
        seeds = ", ".join(str(r.config.seed) for r in runs)
        lines.append(f"| {label} | {seeds} | {_pm([r.test_metrics['accuracy'] for r in runs])} | "
                     f"{_pm([r.test_metrics['loss'] for r in runs])} | "
                     f"{_pm([r.history['loss'][-1] if r.history['loss'] else np.nan for r in runs])} | "
                     f"{sum(r.diverged is not None for r in runs)} |")
    lines += ["", "Mean ± sample standard deviation over the seeds of each setting, after the last epoch "
              "(test = the test split, as `val_*` in the histories)."]
    return "\n".join(lines) + "\n"


def write(output: str | os.PathLike, result: SweepResult, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``summary.md`` and ``curves.png`` into ``output``; their paths by name."""
    folder = Path(output)
    files.write_json(folder / RESULTS, {**result.record(), **(extra or {})})
    files.write_text(folder / SUMMARY, summary_markdown(result))
    curves = {label: [r.history for r in runs if r.history["val_loss"]]
              for label, runs in settings(result.runs).items()}
    curves = {label: h for label, h in curves.items() if h}
    paths = {RESULTS: folder / RESULTS, SUMMARY: folder / SUMMARY}
    if curves:
        paths[CURVES] = plots.training_curves(
            curves, folder / CURVES, panels=(("test loss", ("val_loss",)), ("test accuracy", ("val_accuracy",))),
            title="Sweep: test curves per setting (mean ± std over seeds)")
    return paths
