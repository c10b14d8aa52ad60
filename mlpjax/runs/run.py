"""Run directories: start a run into one or resume it, train it with its checkpoints (every ``save_every``-th
epoch, the first and the last) and its ``metrics.json`` (every epoch), and evaluate the model it saved. Saving
and restoring themselves are :mod:`mlpjax.runs.checkpoint`'s.

A run directory ``DIR`` holds ``checkpoints/<epoch>/``, ``best/<epoch>/`` and ``metrics.json`` (see
``docs/checkpoints.md``). Nothing is written before every setting has been checked.

Ownership: :func:`start` and :func:`resume` claim the directory (:class:`mlpjax.runs.lock.RunLock`) once their
checks pass, and the :class:`Run` holds it until :meth:`Run.fit` returns (or :meth:`Run.close`); a second
claimant is refused. Claiming creates the directory and proves it writable, before anything is trained. A run
that ends without a complete epoch (refused, failed or closed before its first save) removes what its claim
created, folders included, wherever they hold nothing else: a directory the user had stays. A directory
without a complete epoch (a run interrupted during its first save) is no run: :func:`start` may use it again,
and :func:`resume` says so. A relative ``data_dir`` (and a dataset file's path) is saved absolute, with the digest
of the file (:class:`mlpjax.data.Digest`): resuming or evaluating after the file changed is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mlpjax import data as data_lib
from mlpjax import files
from mlpjax.core import metrics as metrics_lib
from mlpjax.core.config import TrainConfig
from mlpjax.data import scaling
from mlpjax.errors import FieldError, UserInputError, check_int
from mlpjax.runs import checkpoint, logs, orbax_io
from mlpjax.runs.checkpoint import BEST, CHECKPOINTS, METRICS, Checkpoint, SaveError
from mlpjax.runs.lock import PROBE_PREFIX, RunLock, claim_files, refuse_if_locked
from mlpjax.training import distributed
from mlpjax.training.compiled import prepare_evaluate
from mlpjax.training.result import FitResult, progress_record
from mlpjax.training.rows import Rows
from mlpjax.training.steps import summarize
from mlpjax.training.train import Resumed, Saving, TrainingDiverged, fit, fit_scaler, trained_config

# Settings that may change when resuming; every other TrainConfig field is part of the saved architecture/objective.
RESUMABLE_CHANGES = ("epochs", "data_dir", "lr", "batch_size", "early_stopping")


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run into ``directory``: fresh (``checkpoint`` None) or resumed from ``checkpoint``; an epoch
    is saved every ``save_every`` (the first and the last too: :func:`mlpjax.training.loop.saves`), the last
    ``keep`` saved are kept, and with ``save_best`` the best by val_loss, when it is reached."""

    directory: Path
    config: TrainConfig
    keep: int
    save_best: bool
    checkpoint: Checkpoint | None = None
    lock: RunLock | None = None  # held for the run's life (None: a Run made by hand, unowned)
    save_every: int = 1

    def close(self) -> None:
        """Give the directory up (:meth:`fit` does it when it ends; idempotent). A fresh run that saved no
        epoch leaves nothing it created: its lock file and the folders its claim made, while they hold nothing
        else."""
        if self.lock is None or not self.lock.held:
            return
        unused = self.checkpoint is None and not _holds_anything_saved(self.directory)
        if unused and self.directory in self.lock.created:  # an empty checkpoints/ of a failed first save
            for name in (CHECKPOINTS, BEST):
                with contextlib.suppress(OSError):
                    (self.directory / name).rmdir()
        self.lock.release(remove_created=unused)

    def fit(
        self,
        dataset: data_lib.Dataset | None = None,
        *,
        log: Callable[[str], None] | None = None,
        mesh: jax.sharding.Mesh | None = None,
    ) -> FitResult:
        """Train up to ``config.epochs`` epochs in all, saving them as :class:`Run` says; metrics.json holds the
        whole history after every epoch (it may be ahead of the last checkpoint: a resumed run takes the
        checkpoint and rewrites it).

        ``mesh`` as for :func:`mlpjax.training.train.fit`. With several processes, every process calls this alike (the
        checkpoint saves are collective); only process 0 writes ``metrics.json``.
        """
        try:
            return self._fit(dataset, log=log, mesh=mesh)
        finally:
            self.close()

    def check_data(self, dataset: data_lib.Dataset) -> None:
        """Refuse ``dataset`` for a resumed run if it was read from files that changed since the run recorded
        their digest (one UserInputError naming the file, what it was and what it is)."""
        if self.checkpoint is not None:
            data_lib.check_unchanged(
                dataset.name, self.checkpoint.dataset_digest, dataset.digest, f"the model in {self.directory}"
            )

    def _fit(self, dataset, *, log, mesh) -> FitResult:
        ckpt = self.checkpoint
        dataset = dataset or self.config.load_dataset()
        self.check_data(dataset)
        config = trained_config(self.config, dataset)  # what fit trains with, and so what the checkpoints say
        model_config = config.model_config(dataset.input_dim, dataset.num_classes)
        if ckpt is not None and ckpt.model_config != model_config:
            raise UserInputError(
                f"{ckpt.path}: the saved model ({ckpt.model_config.input_dim} features, "
                f"{ckpt.model_config.num_classes} classes) does not fit dataset "
                f"{dataset.name!r} ({dataset.input_dim} features, {dataset.num_classes} classes)"
            )
        # the scaling: fitted on the rows trained on, as fit fits it; a resumed run keeps the one it saved
        scaler = ckpt.scaler if ckpt is not None else fit_scaler(config, dataset)
        # early stopping keeps the best epoch in DIR/best: a resumed run restores its weights from there
        save_best = self.save_best or config.early_stopping is not None
        best = self._best()
        writer = checkpoint.Writer(
            self.directory,
            config,
            keep=self.keep,
            save_best=save_best,
            best_val_loss=math.inf if best is None else best.history["val_loss"][-1],
            trained_on=checkpoint.TrainedOn(dataset.digest, scaler),
            save_every=self.save_every,
        )
        run_logs = (
            logs.RunLogs(self.directory, dataset.image_shape, config.validation) if distributed.is_primary() else None
        )
        if ckpt is not None and save_best:
            # The resumed epoch may be better than DIR/best: a kill between the two saves of an epoch, or
            # save_best first asked for now (then the best is tracked from the resumed epoch on).
            writer.save(ckpt.epoch, ckpt.state, ckpt.history, last=False)
        primary, earlier = distributed.is_primary(), self._earlier_epoch_seconds()

        def save(epoch, resumed):  # the epochs fit saves (after each one, before on_epoch_end)
            writer.save(epoch, resumed.state, resumed.history)

        def on_epoch_end(epoch, state, history):
            writer.save(epoch, state, history, last=False)  # the best, when it is reached
            if run_logs is not None:
                with _kept_if_it_fails():
                    run_logs.epoch_end(epoch, state, history)
            if primary:
                _write_metrics(
                    self.directory,
                    progress_record(config, history, dataset.describe(), dataclasses.asdict(model_config)),
                )

        try:
            result = fit(
                config,
                dataset,
                log=log,
                on_epoch_end=on_epoch_end,
                save=Saving(save, self.save_every),
                mesh=mesh,
                resume_from=Resumed(
                    ckpt.state, ckpt.history, None if best is None else (best.epoch, best.state.params), ckpt.scaler
                )
                if ckpt
                else None,
            )
            if run_logs is not None:
                with _kept_if_it_fails():
                    # the figure marks the epoch whose weights are kept
                    run_logs.finish(result.kept_epoch, result.history)
        except TrainingDiverged as e:
            if ckpt is None and e.epoch == 1:
                raise  # nothing was saved
            raise TrainingDiverged(
                e.epoch, e.loss, note=f"; the checkpoints in {self.directory} are kept, the last of epoch {e.epoch - 1}"
            ) from None
        finally:
            failing = sys.exc_info()[0] is not None
            writer.close()
            if run_logs is not None:
                # after a failure (a full disk) the logs' last write may fail too: the first failure is said
                with contextlib.suppress(Exception) if failing else _kept_if_it_fails():
                    run_logs.close()
        if primary:
            record = {
                "complete": True,
                "epochs_done": len(result.history["loss"]),
                "resumed_from_epoch": ckpt.epoch if ckpt else 0,
                **result.record(earlier),
            }
            _write_metrics(self.directory, record)
        return result

    def _best(self) -> Checkpoint | None:
        """The resumed run's best epoch (DIR/best), where it keeps one. A run killed between its first epoch's
        checkpoint and its first best save has a ``best/`` without a complete epoch: none (the resumed epoch is
        then saved as the best)."""
        if self.checkpoint is not None and orbax_io.complete_steps(self.directory / BEST):
            return checkpoint.restore(self.directory, best=True)
        return None

    def _earlier_epoch_seconds(self) -> list[float]:
        """The seconds of the epochs already done, from ``metrics.json`` (as many as the checkpoint holds)."""
        if self.checkpoint is None:
            return []
        try:  # a regular file of bounded size only: a FIFO or a link to /dev/zero is not read (UserInputError)
            with files.open_regular(self.directory / METRICS) as f:
                text = f.read(orbax_io.MAX_METADATA_BYTES + 1)
            if len(text) > orbax_io.MAX_METADATA_BYTES:
                return []
            saved = json.loads(text).get("epoch_seconds", [])
            seconds = [float(s) for s in saved][: self.checkpoint.epoch]
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):  # UserInputError is a ValueError
            seconds = []
        return seconds


def _holds_anything_saved(directory: Path) -> bool:
    """Whether ``directory`` holds a run (an epoch, ``metrics.json``); True where that cannot be read."""
    try:
        return checkpoint.holds_run(directory) is not None
    except OSError:
        return True


@contextlib.contextmanager
def _kept_if_it_fails() -> Iterator[None]:
    """Within it, a file that cannot be written (``metrics.json``, the logs, the learning curves: a full disk) is a
    :class:`SaveError` that says what was kept: the checkpoints saved so far."""
    try:
        yield
    except SaveError:
        raise
    except UserInputError as e:
        raise SaveError(f"{e}; the checkpoints saved so far are intact") from None


def _write_metrics(directory: Path, record: Mapping[str, Any]) -> None:
    with _kept_if_it_fails():
        files.write_json(directory / METRICS, record)


def absolute_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with its ``data_dir`` and a dataset file's path made absolute, so that the run can be read from
    any working directory."""
    changes = {}
    if config.data_dir is not None and not os.path.isabs(config.data_dir):
        changes["data_dir"] = os.path.abspath(config.data_dir)
    if data_lib.is_path(config.dataset) and not os.path.isabs(config.dataset):
        changes["dataset"] = os.path.abspath(config.dataset)
    return config.replace(**changes) if changes else config


def _refuse_a_run(directory: Path) -> None:
    found = checkpoint.holds_run(directory)
    if found is not None:
        raise FieldError(
            "output",
            f"{{field}} {directory}: already holds a training run ({found}); "
            f"continue it with {{resume}} {directory} or choose another {{field}}",
            also=("resume",),
        )


def refuse_foreign_files(
    directory: Path, field: str = "output", ours: tuple[str, ...] = (), written: tuple[str, ...] = ()
) -> None:
    """Refuse an existing folder ``directory`` that holds what mlpjax did not write: a new output folder is new,
    empty, or (names in ``ours``) one that mlpjax began. Files of mlpjax's own names may still be the user's, so
    names alone are not enough: a folder counts as begun by mlpjax only when it holds one of ``ours``, and then
    nothing in it is replaced that is not mlpjax's. What a kill leaves of mlpjax's own writing counts for
    nothing: the lock file, a write probe, and the temporary files of the files named in ``written``
    (:func:`mlpjax.files.temporary_of`). At most 64 entries are looked at (a huge folder is refused as fast as a
    small one)."""
    try:
        names = files.first_names(directory, 64)
    except UserInputError as e:
        raise FieldError(field, f"{{field}} {e}") from None
    if names is None:
        return  # new, or a file in the way: the writability checks that follow say which
    left = claim_files(names) | {n for n in names for w in written if files.temporary_of(n, w)}
    foreign = [n for n in names if n not in left]
    if foreign and not any(n in ours for n in foreign):
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise FieldError(
            field,
            f"{{field}} {directory}: holds files that mlpjax did not write ({shown}); nothing "
            "there is replaced: give a new or empty folder",
        )


def _prove_writable(directory: Path, field: str) -> None:
    """Create ``directory``, write, sync and remove a file in it: it can take checkpoints (else a FieldError)."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=PROBE_PREFIX)
        try:
            os.write(fd, b"mlpjax")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as e:
        raise FieldError(field, f"{{field}} {directory}: cannot be written ({e.strerror or e})") from None


def _claim(directory: Path, field: str) -> RunLock | None:
    """Claim ``directory`` for a run in two steps: take its lock, which creates the directory (process 0 holds
    it for all the processes of a distributed run, which meet at each save), then prove that it can be
    written. A failed proof gives the lock up and removes what taking it created."""
    lock = RunLock(directory, field) if distributed.is_primary() else None
    try:
        _prove_writable(directory, field)
    except BaseException:
        if lock is not None:
            lock.release(remove_created=True)
        raise
    if lock is not None:
        remove_leftovers(directory)
    return lock


# The files of a run directory that are written atomically (mlpjax.files.write_atomic): a kill in their writing
# leaves a temporary file beside them
WRITTEN_ATOMICALLY = (METRICS, logs.CSV, logs.CURVES)


def remove_leftovers(directory: Path) -> None:
    """Remove what a run killed (or failed) at any instant left in ``directory`` of its own unfinished writing, so
    that the run that claims it next (its owner: call it holding the lock) ends with nothing of it: the temporary
    files of :data:`WRITTEN_ATOMICALLY` (``.metrics.json.XXXXXXXX.tmp``, ...), a probe of :func:`_prove_writable`,
    and Orbax's temporary folders in ``checkpoints/`` and ``best/`` (``1.orbax-checkpoint-tmp-...``; a half-made
    numbered epoch is set aside by the next save, :func:`mlpjax.runs.orbax_io.set_aside_incomplete_steps`)."""
    files.remove_temporaries(directory, WRITTEN_ATOMICALLY, prefixes=(PROBE_PREFIX,))
    for sub in (CHECKPOINTS, BEST):
        orbax_io.remove_partial(directory / sub, tries=1, settled=1)


# What a run writes into its directory, removed by ``start(..., overwrite=True)`` in this order: the checkpoints
# last, so that a directory stopped part way through still counts as a run and can be overwritten again.
RUN_ARTEFACTS = (METRICS, logs.CSV, logs.CURVES, logs.TENSORBOARD, BEST, CHECKPOINTS)


def start(
    output: str | os.PathLike,
    config: TrainConfig,
    *,
    keep: int | None = None,
    save_best: bool = False,
    save_every: int = 1,
    overwrite: bool = False,
) -> Run:
    """A fresh run into directory ``output``, which must not hold a run already unless ``overwrite``.

    Creates the directory, claims it (the Run holds its lock) and checks it can be written; a directory
    without a complete epoch (an interrupted first save) is used again. ``save_every``: see :class:`Run`.
    ``overwrite``: an earlier run there (not one in progress: its lock is held) is removed once the directory is
    claimed, what mlpjax wrote only (:data:`RUN_ARTEFACTS`); a directory holding the user's own files is refused
    all the same.
    """
    save_every = check_int("save_every", save_every)
    directory = Path(output)
    if directory.exists() and not directory.is_dir():
        raise FieldError("output", f"{{field}} {directory}: exists and is not a directory")
    if not overwrite:
        _refuse_a_run(directory)
    refuse_foreign_files(directory, ours=(CHECKPOINTS, METRICS) if overwrite else (CHECKPOINTS,))
    lock = _claim(directory, "output")
    if lock is not None:
        try:
            if overwrite:
                _remove_run(directory)
            else:
                _refuse_a_run(directory)  # again, now that it is ours: another run may have ended in between
        except BaseException:
            lock.release(remove_created=True)
            raise
    return Run(
        directory,
        absolute_paths(config),
        keep=checkpoint.DEFAULT_KEEP if keep is None else keep,
        save_best=save_best,
        lock=lock,
        save_every=save_every,
    )


def _remove_run(directory: Path) -> None:
    """Remove what an earlier run wrote into ``directory`` (:data:`RUN_ARTEFACTS`), for ``overwrite``; a failure
    is one line naming the file."""
    for name in RUN_ARTEFACTS:
        path = directory / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except OSError as e:
            raise FieldError(
                "overwrite", f"{{field}}: {path}: cannot remove the earlier run's file ({e.strerror})"
            ) from None


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def resume(
    directory: str | os.PathLike,
    changes: Mapping[str, Any] | None = None,
    *,
    keep: int | None = None,
    save_best: bool = False,
    save_every: int | None = None,
) -> Run:
    """Continue run ``directory`` from its latest complete epoch (with ``save_every`` above 1, the epochs trained
    after it were not saved: they are trained again, to the same numbers).

    ``changes``: flat TrainConfig fields to set (as :meth:`TrainConfig.replace` takes them). Only
    :data:`RESUMABLE_CHANGES` may differ from the saved config (``epochs`` is the total, at least the epochs
    done); ``keep``, ``save_best`` and ``save_every`` default to the saved ones (another ``save_every``
    changes only which epochs are saved). Raises before anything is written; then claims the directory
    (refused while another run holds it) and checks it can still be written.
    """
    directory = Path(directory)
    if save_every is not None:
        save_every = check_int("save_every", save_every)
    refuse_if_locked(directory, "resume")  # before reading: a live run deletes its old epochs as it goes
    run = _resumed(directory, checkpoint.restore(directory), changes, keep=keep, save_best=save_best)
    if save_every is not None:
        run = dataclasses.replace(run, save_every=save_every)
    lock = _claim(directory, "resume")  # only once the checks pass: a refusal writes nothing
    if lock is not None and orbax_io.complete_steps(directory / CHECKPOINTS)[-1:] != [run.checkpoint.epoch]:  # type: ignore[union-attr]  # a resumed Run has its checkpoint
        lock.release(remove_created=True)  # another run saved an epoch while this one was being read
        raise FieldError(
            "resume", f"{{field}} {directory}: another run saved into it while it was being read; try again"
        )
    return dataclasses.replace(run, lock=lock)


def _resumed(
    directory: Path, ckpt: Checkpoint, changes: Mapping[str, Any] | None, *, keep: int | None, save_best: bool
) -> Run:
    """The Run that continues ``ckpt`` with ``changes`` (checked; writes nothing, claims nothing)."""
    saved = ckpt.config.to_dict()
    changes = {k: list(v) if k == "hidden" else v for k, v in (changes or {}).items()}
    if isinstance(changes.get("dataset"), str) and data_lib.is_path(changes["dataset"]):
        changes["dataset"] = os.path.abspath(changes["dataset"])  # as the run recorded it
    if "image_size" in changes:  # 28, "28" and "28x28" are (28, 28), as the run recorded it
        changes["image_size"] = data_lib.check_image_size(changes["image_size"])
    for name, value in changes.items():
        if name not in saved:
            raise UserInputError(f"unknown training setting {name!r}")
        if name not in RESUMABLE_CHANGES and value != saved[name]:
            raise FieldError(
                name,
                f"{{field}} {_shown(value)} contradicts the checkpoint ({name} {saved[name]!r}); "
                "leave it out to resume with the saved settings, or train a new model into another "
                "{output}",
                where=ckpt.path,
                also=("output",),
            )
    config = absolute_paths(ckpt.config.replace(**changes))
    if config.epochs < ckpt.epoch:  # type: ignore[operator]  # __post_init__ fills epochs: never None
        raise FieldError(
            "epochs",
            f"{{field}} {config.epochs}: {directory} already holds {ckpt.epoch} epochs; "
            f"{{field}} is the total, so give at least {ckpt.epoch}",
        )
    # the optimizer (a static field of the state) is rebuilt by fit from the config, a changed --lr included
    return Run(
        directory,
        config,
        keep=ckpt.keep if keep is None else keep,
        save_best=save_best or ckpt.save_best,
        checkpoint=ckpt,
        save_every=ckpt.save_every,
    )


def dataset_for(
    ckpt: Checkpoint, dataset: str | None = None, data_dir: str | os.PathLike | None = None
) -> data_lib.Dataset:
    """The dataset ``ckpt`` was trained on (or ``dataset``), checked to fit its model, and, where it was read from
    files, to be what the run recorded (:func:`mlpjax.data.check_unchanged`); a ``data_dir`` for a dataset that
    reads no folder is refused (:func:`mlpjax.data.check_data_dir`)."""
    name = dataset or ckpt.config.dataset
    data_lib.check_data_dir(name, data_dir)
    same = name == ckpt.config.dataset
    folder = data_dir if data_dir is not None else (ckpt.config.data_dir if same else None)
    c = ckpt.config
    options: dict[str, Any] = (
        {"label_column": c.label_column, "test_split": c.test_split, "image_size": c.image_size, "nan": c.nan}
        if same
        else {}
    )
    ds = data_lib.load_dataset(name, folder, **options)
    if same:
        data_lib.check_unchanged(ds.name, ckpt.dataset_digest, ds.digest, f"the model in {ckpt.path.parent.parent}")
    check_fits(ckpt, name, (ds.input_dim, ds.num_classes))
    return ds


def check_fits(ckpt: Checkpoint, name: str, shape: tuple[int, int]) -> None:
    """Refuse dataset ``name`` of ``shape`` ``(input_dim, num_classes)`` unless ``ckpt``'s model takes it."""
    m = ckpt.model_config
    if shape != (m.input_dim, m.num_classes):
        raise UserInputError(
            f"{ckpt.path}: the model takes {m.input_dim} features and {m.num_classes} "
            f"classes but dataset {name!r} has {shape[0]} and {shape[1]}"
        )


def evaluate(
    directory: str | os.PathLike,
    *,
    dataset: str | None = None,
    data_dir: str | os.PathLike | None = None,
    best: bool = False,
) -> dict[str, Any]:
    """Test loss and metrics of a saved model: ``checkpoint``, ``epoch``, ``dataset``, ``test_loss``,
    ``test_accuracy``, ``test_metrics`` (:func:`mlpjax.training.steps.summarize`'s), ``confusion``
    (``(C, C)`` counts as lists, row: true class), ``per_class`` (precision, recall, support lists) and
    ``class_names``. The test rows are scaled by the run's saved scaling (``normalize``), as training scaled them."""
    ckpt = checkpoint.restore(directory, best=best)
    ds = dataset_for(ckpt, dataset, data_dir)
    evaluator = prepare_evaluate(
        ckpt.state.params,
        Rows.from_dataset(scaling.scaled_dataset(ds.head(0), ckpt.scaler), "test"),  # the run's scaling, if any
        model_config=ckpt.model_config,
        loss_name=ckpt.config.loss,
    )
    sums = evaluator.sums(ckpt.state.params)
    metrics, confusion = summarize(sums), np.asarray(sums["confusion"])
    return {
        "checkpoint": str(ckpt.path),
        "epoch": ckpt.epoch,
        "dataset": ds.name,
        "test_loss": metrics["loss"],
        "test_accuracy": metrics["accuracy"],
        "test_metrics": metrics,
        "confusion": confusion.astype(int).tolist(),
        "per_class": metrics_lib.per_class(confusion),
        "class_names": list(ds.class_names) or [str(c) for c in range(ds.num_classes)],
    }
