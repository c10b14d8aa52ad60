"""A sweep's TensorBoard HParams data: ``DIR/tensorboard/`` (``mlpjax sweep --output DIR``), written at its end.

One TensorBoard run per model, ``model_<i>`` (``i``: its index in ``results.json``'s ``runs``, zero-padded so the
runs sort in grid order), holding what tensorboardX's ``SummaryWriter.add_hparams`` writes (its ``summary.hparams``;
no TensorFlow needed), written synchronously (:func:`_write_into` says why):

* hparams: every field the sweep varies and those of :data:`SHOWN` (:func:`mlpjax.sweep.report.varied`),
  from the model's config; a field is a number in every model, a bool in every model, or else a string in every
  model (``hidden`` as ``256x128``; None as ``off`` where it turns the setting off, else as ``default``), so that
  the HParams view compares them;
* metrics (:func:`metrics`), at step = the epochs the model trained: ``hparams/test_loss``,
  ``hparams/test_accuracy`` and ``hparams/test_<metric>`` (as ``results.json``'s ``test_metrics``: the kept
  weights on the test set), ``hparams/best_val_loss`` and ``hparams/best_val_accuracy`` (the lowest and highest
  of the history's ``val_*``), ``hparams/train_loss`` (the last epoch's); NaN where a model diverged;
* its history (``loss``, ``accuracy``, ``val_loss``, ...) as scalars at step = the 1-based epoch, so that the
  HParams view draws each model's curves too.

The folder is written beside, as a hidden temporary folder, and takes the name ``tensorboard`` only when complete
(a resumed sweep's replaces the earlier one): a failure (a full disk) is one line naming ``DIR/tensorboard`` and
leaves the earlier files as they were. Open it with ``tensorboard --logdir DIR/tensorboard`` (docs/sweep.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlpjax import files
from mlpjax.core.config import describe
from mlpjax.errors import UserInputError
from mlpjax.runs import logs
from mlpjax.sweep.report import _value, varied
from mlpjax.sweep.train import LISTED, ModelRun, SweepResult

TENSORBOARD = "tensorboard"
# Shown whether varied or not, with the varied fields: TensorBoard lists hparams by name and ticks only the first 5
# for display, so few fixed ones keep the swept ones visible (the whole config is in results.json)
SHOWN = ("seed", "hidden", "optimizer")
METRIC = "hparams/"  # the metrics' tag prefix: apart from the history's scalars


def run_names(count: int) -> list[str]:
    """``model_0``, ``model_1``, ... zero-padded to the widest index (``model_00`` ... ``model_11``)."""
    width = len(str(max(count - 1, 0)))
    return [f"model_{i:0{width}d}" for i in range(count)]


def hparams(runs: Sequence[ModelRun]) -> list[dict[str, bool | str | float]]:
    """Each model's hparams (module docstring): :data:`SHOWN` and the varied fields, one type per field."""
    varying = set(varied(runs))
    names = [n for n in LISTED if n in SHOWN or n in varying]
    configs = [r.config.to_dict() for r in runs]
    described = describe()
    found: list[dict[str, bool | str | float]] = [{} for _ in runs]
    for name in names:
        values = [c[name] for c in configs]
        for one, value in zip(found, values, strict=True):
            if all(isinstance(v, bool) for v in values):
                one[name] = bool(value)
            elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                one[name] = float(value)
            elif value is None:  # None: off where it turns a setting off, else the default (lr: the optimizer's)
                one[name] = described[name].off or "default" if name in described else "default"
            else:
                one[name] = _value(name, value)
    return found


def _extreme(values: Sequence[float], pick) -> float:
    finite = [float(v) for v in values if math.isfinite(float(v))]
    return float(pick(finite)) if finite else math.nan


def metrics(run: ModelRun) -> dict[str, float]:
    """A model's metrics (module docstring), tags with the :data:`METRIC` prefix."""
    test = {
        "loss": run.test_metrics.get("loss", math.nan),
        "accuracy": run.test_metrics.get("accuracy", math.nan),
        **run.test_metrics,
    }
    found = {f"{METRIC}test_{k}": float(v) for k, v in test.items()}
    found[f"{METRIC}best_val_loss"] = _extreme(run.history.get("val_loss", []), min)
    found[f"{METRIC}best_val_accuracy"] = _extreme(run.history.get("val_accuracy", []), max)
    losses = run.history.get("loss", [])
    found[f"{METRIC}train_loss"] = float(losses[-1]) if len(losses) else math.nan
    return found


def _events(run: ModelRun, hp: dict[str, bool | str | float]) -> list[Any]:
    """The events of a model's TensorBoard run: what ``SummaryWriter.add_hparams(hp, metrics, global_step=epochs)``
    writes (tensorboardX's own ``summary.hparams``: the experiment, the session start and end, each metric as a
    scalar), after the history's scalars."""
    from tensorboardX import summary
    from tensorboardX.proto.event_pb2 import Event

    now = time.time()
    found = [
        Event(wall_time=now, step=epoch, summary=summary.scalar(key, float(np.asarray(value))))
        for key, values in run.history.items()
        for epoch, value in enumerate(values, start=1)
    ]
    found += [Event(wall_time=now, summary=s) for s in summary.hparams(hp, metrics(run))]
    epochs = len(run.history.get("loss", []))
    found += [
        Event(wall_time=now, step=epochs, summary=summary.scalar(tag, value)) for tag, value in metrics(run).items()
    ]
    return found


def _write_into(folder: Path, runs: Sequence[ModelRun]) -> None:
    """Each model's events into ``folder/<run name>/``, written and flushed here, in this thread
    (:func:`mlpjax.runs.logs.events_writer`: the events ``add_hparams`` would write, without its writer thread)."""
    for name, run, hp in zip(run_names(len(runs)), runs, hparams(runs), strict=True):
        (folder / name).mkdir()
        writer = logs.events_writer(folder / name)
        try:
            for event in _events(run, hp):
                writer.write_event(event)
            writer.flush()
        finally:
            with contextlib.suppress(OSError):
                writer.close()


def write(output: str | os.PathLike, result: SweepResult) -> Path:
    """Write ``output/tensorboard/`` (module docstring) for ``result``'s models; its path. A failure is a
    UserInputError naming it, the temporary folder removed and an earlier ``tensorboard/`` kept."""
    folder = Path(output) / TENSORBOARD
    if os.path.lexists(folder) and not folder.is_dir():
        raise UserInputError(f"{folder}: is not a folder; move it away to write the sweep's TensorBoard logs")
    staging: Path | None = None
    try:
        with files.writing(folder):
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{TENSORBOARD}.", suffix=".tmp"))
            _write_into(staging, result.runs)
            _replace_folder(staging, folder)
            staging = None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _replace_folder(new: Path, folder: Path) -> None:
    """Give the folder ``new`` the name ``folder``, an existing ``folder`` removed once ``new`` is in its place."""
    old: Any = None
    if folder.is_dir():
        old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old.", suffix=".tmp"))
        os.replace(folder, old / folder.name)
    try:
        os.replace(new, folder)
    except OSError:
        if old is not None:
            os.replace(old / folder.name, folder)  # put the earlier one back
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
