"""Run directories: start a run into one or resume it, train it with a checkpoint every epoch and its
``metrics.json``, and evaluate the model it saved. Saving and restoring themselves are :mod:`mlpjax.checkpoint`'s.

A run directory ``DIR`` holds ``checkpoints/<epoch>/``, ``best/<epoch>/`` and ``metrics.json`` (see
``docs/checkpoints.md``). Nothing is written before every setting has been checked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import numpy as np

from mlpjax import checkpoint, distributed, fileio, logs, records
from mlpjax import metrics as metrics_lib
from mlpjax import data as data_lib
from mlpjax.checkpoint import BEST, CHECKPOINTS, METRICS, Checkpoint
from mlpjax.config import TrainConfig
from mlpjax.errors import FieldError, UserInputError
from mlpjax.rows import Rows
from mlpjax.runner import prepare_evaluate
from mlpjax.steps import summarize
from mlpjax.state import abstract_state
from mlpjax.train import Resumed, TrainingDiverged, fit

# Settings that may change when resuming; every other TrainConfig field is part of the saved architecture/objective.
RESUMABLE_CHANGES = ("epochs", "data_dir", "lr", "batch_size", "early_stopping")


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run into ``directory``: fresh (``checkpoint`` None) or resumed from ``checkpoint``; the last
    ``keep`` epochs are kept, and with ``save_best`` the best by val_loss."""

    directory: Path
    config: TrainConfig
    keep: int
    save_best: bool
    checkpoint: Checkpoint | None = None

    def fit(self, dataset: data_lib.Dataset | None = None, *, quiet: bool = True,
            log: Callable[[str], None] | None = None, mesh: jax.sharding.Mesh | None = None) -> records.FitResult:
        """Train up to ``config.epochs`` epochs in all, saving each; metrics.json holds the whole history.

        ``mesh`` as for :func:`mlpjax.train.fit`. With several processes, every process calls this alike (the
        checkpoint saves are collective); only process 0 writes ``metrics.json``.
        """
        ckpt = self.checkpoint
        dataset = dataset or data_lib.load_dataset(self.config.dataset, self.config.data_dir)
        model_config = self.config.model_config(dataset.input_dim, dataset.num_classes)
        if ckpt is not None and ckpt.model_config != model_config:
            raise UserInputError(f"{ckpt.path}: the saved model ({ckpt.model_config.input_dim} features, "
                                 f"{ckpt.model_config.num_classes} classes) does not fit dataset "
                                 f"{dataset.name!r} ({dataset.input_dim} features, {dataset.num_classes} classes)")
        # early stopping keeps the best epoch in DIR/best: a resumed run restores its weights from there
        save_best = self.save_best or self.config.early_stopping is not None
        best = self._best()
        writer = checkpoint.Writer(self.directory, self.config, keep=self.keep, save_best=save_best,
                                   best_val_loss=math.inf if best is None else best.history["val_loss"][-1])
        run_logs = (logs.RunLogs(self.directory, dataset.image_shape, self.config.validation)
                    if distributed.is_primary() else None)
        if ckpt is not None and save_best:
            # The resumed epoch may be better than DIR/best: a kill between the two saves of an epoch, or
            # save_best first asked for now (then the best is tracked from the resumed epoch on).
            writer.save(ckpt.epoch, ckpt.state, ckpt.history, last=False)
        primary, earlier = distributed.is_primary(), self._earlier_epoch_seconds()

        def on_epoch_end(epoch, state, history):
            writer.save(epoch, state, history)
            if run_logs is not None:
                run_logs.epoch_end(epoch, state, history)
            if primary:
                fileio.write_json_atomic(self.directory / METRICS, records.progress_record(
                    self.config, history, dataset.describe(), dataclasses.asdict(model_config)))

        try:
            result = fit(self.config, dataset, quiet=quiet, log=log, on_epoch_end=on_epoch_end, mesh=mesh,
                         resume_from=Resumed(ckpt.state, ckpt.history, None if best is None else
                                             (best.epoch, best.state.params)) if ckpt else None)
        except TrainingDiverged as e:
            raise TrainingDiverged(e.epoch, e.loss, note=f"; the checkpoints in {self.directory} are kept as "
                                   "they were") from None
        finally:
            writer.close()
            if run_logs is not None:
                run_logs.close()
        if primary:
            record = {"complete": True, "epochs_done": len(result.history["loss"]),
                      "resumed_from_epoch": ckpt.epoch if ckpt else 0, **result.record(earlier)}
            fileio.write_json_atomic(self.directory / METRICS, record)
        return result

    def _best(self) -> Checkpoint | None:
        """The resumed run's best epoch (DIR/best), where it keeps one."""
        if self.checkpoint is not None and (self.directory / BEST).is_dir():
            return checkpoint.restore(self.directory, best=True)
        return None

    def _earlier_epoch_seconds(self) -> list[float]:
        """The seconds of the epochs already done, from ``metrics.json`` (as many as the checkpoint holds)."""
        if self.checkpoint is None:
            return []
        try:
            saved = json.loads((self.directory / METRICS).read_text()).get("epoch_seconds", [])
            seconds = [float(s) for s in saved][: self.checkpoint.epoch]
        except (OSError, ValueError, TypeError, AttributeError):
            seconds = []
        return seconds


def start(output: str | os.PathLike, config: TrainConfig, *, keep: int | None = None,
          save_best: bool = False) -> Run:
    """A fresh run into directory ``output``, which must not hold a run already (nothing is overwritten)."""
    directory = Path(output)
    if directory.exists() and not directory.is_dir():
        raise FieldError("output", f"{{field}} {directory}: exists and is not a directory")
    for name in (CHECKPOINTS, BEST, METRICS):
        if (directory / name).exists():
            raise FieldError("output", f"{{field}} {directory}: already holds a training run ({directory / name}); "
                             f"continue it with {{resume}} {directory} or choose another {{field}}",
                             also=("resume",))
    return Run(directory, config, keep=checkpoint.DEFAULT_KEEP if keep is None else keep, save_best=save_best)


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def resume(directory: str | os.PathLike, changes: Mapping[str, Any] | None = None, *, keep: int | None = None,
           save_best: bool = False) -> Run:
    """Continue run ``directory`` from its latest complete epoch.

    ``changes``: flat TrainConfig fields to set (as :meth:`TrainConfig.replace` takes them). Only
    :data:`RESUMABLE_CHANGES` may differ from the saved config (``epochs`` is the total, at least the epochs
    done); ``keep`` and ``save_best`` default to the saved ones. Reads only: raises before anything is written.
    """
    ckpt = checkpoint.restore(directory)
    saved = ckpt.config.to_dict()
    changes = {k: list(v) if k == "hidden" else v for k, v in (changes or {}).items()}
    for name, value in changes.items():
        if name not in saved:
            raise UserInputError(f"unknown training setting {name!r}")
        if name not in RESUMABLE_CHANGES and value != saved[name]:
            raise FieldError(name, f"{{field}} {_shown(value)} contradicts the checkpoint ({name} {saved[name]!r}); "
                             "leave it out to resume with the saved settings, or train a new model into another "
                             "{output}", where=ckpt.path, also=("output",))
    config = ckpt.config.replace(**changes)
    if config.epochs < ckpt.epoch:
        raise FieldError("epochs", f"{{field}} {config.epochs}: {directory} already holds {ckpt.epoch} epochs; "
                         f"{{field}} is the total, so give at least {ckpt.epoch}")
    # The optimizer is a static field of the state: rebuild it, in case the learning rate changed.
    state = ckpt.state.replace(tx=abstract_state(config, ckpt.model_config).tx)
    return Run(Path(directory), config, keep=ckpt.keep if keep is None else keep,
               save_best=save_best or ckpt.save_best, checkpoint=dataclasses.replace(ckpt, state=state))


def dataset_for(ckpt: Checkpoint, dataset: str | None = None,
                data_dir: str | os.PathLike | None = None) -> data_lib.Dataset:
    """The dataset ``ckpt`` was trained on (or ``dataset``), checked to fit its model."""
    name = dataset or ckpt.config.dataset
    folder = data_dir if data_dir is not None else (ckpt.config.data_dir if name == ckpt.config.dataset else None)
    ds = data_lib.load_dataset(name, folder)
    m = ckpt.model_config
    if (ds.input_dim, ds.num_classes) != (m.input_dim, m.num_classes):
        raise UserInputError(f"{ckpt.path}: the model takes {m.input_dim} features and {m.num_classes} "
                             f"classes but dataset {name!r} has {ds.input_dim} and {ds.num_classes}")
    return ds


def evaluate(directory: str | os.PathLike, *, dataset: str | None = None, data_dir: str | os.PathLike | None = None,
             best: bool = False) -> dict[str, Any]:
    """Test loss and metrics of a saved model: ``checkpoint``, ``epoch``, ``dataset``, ``test_loss``,
    ``test_accuracy``, ``test_metrics`` (loss, accuracy, precision, recall, f1_score, mse, mae), ``confusion``
    (``(C, C)`` counts as lists, row: true class), ``per_class`` (precision, recall, support lists) and
    ``class_names``."""
    ckpt = checkpoint.restore(directory, best=best)
    ds = dataset_for(ckpt, dataset, data_dir)
    evaluator = prepare_evaluate(ckpt.state.params, Rows.from_dataset(ds, "test"), model_config=ckpt.model_config,
                                 loss_name=ckpt.config.loss)
    sums = evaluator.sums(ckpt.state.params)
    metrics, confusion = summarize(sums), np.asarray(sums["confusion"])
    return {"checkpoint": str(ckpt.path), "epoch": ckpt.epoch, "dataset": ds.name, "test_loss": metrics["loss"],
            "test_accuracy": metrics["accuracy"], "test_metrics": metrics,
            "confusion": confusion.astype(int).tolist(), "per_class": metrics_lib.per_class(confusion),
            "class_names": list(ds.class_names) or [str(c) for c in range(ds.num_classes)]}
