"""What a sweep leaves in its output folder: ``results.json``, ``summary.md`` (mean ± std over seeds per
setting), ``curves.png`` (``val_*`` curves per setting, mean with a ± std band: the test set's, or the
validation split's where one is held out) and ``tensorboard/`` (TensorBoard's HParams data:
:mod:`mlpjax.sweep.hparams`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import files, plots
from mlpjax.errors import UserInputError
from mlpjax.sweep.train import LISTED, ModelRun, SweepResult

RESULTS, SUMMARY, CURVES = "results.json", "summary.md", "curves.png"


def varied(runs: Sequence[ModelRun]) -> list[str]:
    """The flat fields of :data:`mlpjax.sweep.train.LISTED` that take more than one value among ``runs``."""
    values = {name: {str(r.config.to_dict()[name]) for r in runs} for name in LISTED}
    return [name for name in LISTED if len(values[name]) > 1]


def setting_label(run: ModelRun, fields: Sequence[str]) -> str:
    """``"lr 0.001, dropout 0.2"``: the values of ``fields`` (seed excluded) of ``run``'s config."""
    d = run.config.to_dict()
    shown = [f"{name} {_value(name, d[name])}" for name in fields if name != "seed"]
    return ", ".join(shown) or "all"


def _value(name: str, value: Any) -> str:
    """A field's value as a label shows it: ``256x128`` (hidden), ``accuracy,f1_score`` (metrics), ``off``
    (``early_stopping`` None)."""
    if isinstance(value, (list, tuple)):
        return ("x" if name == "hidden" else ",").join(map(str, value))
    return "off" if value is None else str(value)  # only a setting that None turns off is listed with None


def val_name(runs: Sequence[ModelRun]) -> str:
    """What ``val_*`` of ``runs`` measured, as labels say it: ``"test"`` (the test set: no validation split),
    else ``"val"`` (a validation split, in some runs or all)."""
    return "test" if all(r.config.validation == "test" for r in runs) else "val"


def _val_note(runs: Sequence[ModelRun]) -> str:
    kinds = {r.config.validation for r in runs}
    if kinds == {"test"}:
        return "(test = the test split, as `val_*` in the histories)."
    where = (
        "a validation split"
        if kinds == {"split"}
        else "a validation split where validation_split > 0, else the test set"
    )
    return (
        f"(test = the test split, evaluated after the last epoch; `val_*` in the histories and curves.png = {where})."
    )


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
    lines = [
        f"# Sweep: {len(result.runs)} models in {len(result.groups)} group(s), strategy {result.strategy}, "
        f"{result.seconds:.1f} s",
        "",
        "| setting | seeds | test accuracy | test loss | train loss | diverged |",
        "|---|---|---|---|---|---|",
    ]
    for label, runs in settings(result.runs).items():
        seeds = ", ".join(str(r.config.seed) for r in runs)
        lines.append(
            f"| {label} | {seeds} | {_pm([r.test_metrics['accuracy'] for r in runs])} | "
            f"{_pm([r.test_metrics['loss'] for r in runs])} | "
            f"{_pm([r.history['loss'][-1] if r.history['loss'] else np.nan for r in runs])} | "
            f"{sum(r.diverged is not None for r in runs)} |"
        )
    lines += [
        "",
        "Mean ± sample standard deviation over the seeds of each setting, after the last epoch "
        + _val_note(result.runs),
    ]
    return "\n".join(lines) + "\n"


def write(output: str | os.PathLike, result: SweepResult, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``summary.md``, ``curves.png`` and, last, ``tensorboard/``
    (:func:`mlpjax.sweep.hparams.write`) into ``output``; their paths by name.

    Each file is written atomically: one that cannot be written (a full disk) is a UserInputError naming it and
    saying what is kept (the models' checkpoints, so that the resumed sweep writes the report again, and the files
    written before it); no temporary file remains."""
    try:
        return _write(Path(output), result, extra)
    except UserInputError as e:
        raise UserInputError(
            f"{e}; the models' checkpoints are intact and a resumed sweep writes its report again"
        ) from None


def _write(folder: Path, result: SweepResult, extra: dict[str, Any] | None) -> dict[str, Path]:
    from mlpjax.sweep import hparams  # imports tensorboardX when used

    # what an earlier writing of the report, killed, left: its temporary files and TensorBoard's staging folders
    files.remove_temporaries(folder, (RESULTS, SUMMARY, CURVES, hparams.TENSORBOARD))
    files.write_json(folder / RESULTS, {**result.record(), **(extra or {})})
    files.write_text(folder / SUMMARY, summary_markdown(result))
    curves = {
        label: [r.history for r in runs if r.history["val_loss"]] for label, runs in settings(result.runs).items()
    }
    curves = {label: h for label, h in curves.items() if h}
    paths = {RESULTS: folder / RESULTS, SUMMARY: folder / SUMMARY}
    if curves:
        val = val_name(result.runs)
        paths[CURVES] = plots.training_curves(
            curves,
            folder / CURVES,
            panels=((f"{val} loss", ("val_loss",)), (f"{val} accuracy", ("val_accuracy",))),
            title=f"Sweep: {val} curves per setting (mean ± std over seeds)",
        )
    paths[hparams.TENSORBOARD] = hparams.write(folder, result)
    return paths
