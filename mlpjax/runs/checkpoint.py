"""Checkpoints with Orbax: save an epoch (the last few, and the best by val_loss), restore one, load a model.

A run directory ``DIR`` (``mlpjax train --output DIR``) holds::

    DIR/checkpoints/<epoch>/   the last ``keep`` epochs saved: with ``save_every`` N the first, every N-th and
                               the last (:func:`mlpjax.training.loop.saves`); an Orbax CheckpointManager with
                               ``max_to_keep``
    DIR/best/<epoch>/          with ``save_best``: the epoch of lowest val_loss so far (Keras' save_best_only),
                               saved when it is reached, whatever ``save_every``
    DIR/metrics.json           the whole history, rewritten atomically after every epoch

Each ``<epoch>/`` has two Orbax items: ``state``, the arrays of the :class:`~mlpjax.core.state.TrainState` (step,
params, opt_state, the raw uint32 PRNG key) written by ``StandardSave`` (tensorstore), and ``meta``, JSON
(``JsonSave``): the training and model configs, the history so far, a SHA-256 of the state arrays and, for data
read from the user's files, the digest of those files (:class:`mlpjax.data.Digest`). Loading
reads the JSON first, rebuilds the abstract state from the configs and restores the arrays into it, so
nothing is unpickled and a checkpoint cannot run code. Orbax writes each epoch into a temporary directory
and renames it when complete: a process killed at any moment leaves the previous epochs loadable.
Bad checkpoints raise :class:`~mlpjax.errors.UserInputError` naming the path; nothing is ever overwritten.
Starting or resuming a run into such a directory is :mod:`mlpjax.runs.run`'s business.

Promises (``docs/reliability.md``): an epoch is complete when its ``<epoch>/`` directory holds Orbax's
``_CHECKPOINT_METADATA``; restoring takes the newest complete epoch (an empty or half-made numbered directory
is passed over); a directory of any characters works (Orbax sees it through :mod:`mlpjax.runs.orbax_io`); the
metadata is validated as a :class:`TrainConfig` is (a part registered from the user's code that is not registered
now is named: :class:`mlpjax.plugins.MissingPartError`), and the sizes it declares are checked against the files
on disk and the memory available before any array is allocated (:func:`mlpjax.training.budget.check_restore`); a
save that fails (a full disk) raises :class:`SaveError` in one line, its partial files removed, the earlier
epochs intact.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path

import jax

from mlpjax import files, plugins
from mlpjax.core import model
from mlpjax.core.config import TrainConfig
from mlpjax.core.state import TrainState, abstract_state
from mlpjax.data.digest import Digest
from mlpjax.errors import FieldError, UserInputError, check_int
from mlpjax.runs import orbax_io
from mlpjax.runs.lock import claim_files
from mlpjax.training.result import HISTORY_KEYS

FORMAT = "mlpjax-checkpoint"
FORMAT_VERSION = 1
CHECKPOINTS, BEST, METRICS = "checkpoints", "best", "metrics.json"
DEFAULT_KEEP = 3
READ_ATTEMPTS = 5  # reads of the newest epoch while a live run rotates its epochs away (see restore)
MAX_METADATA_BYTES = orbax_io.MAX_METADATA_BYTES  # the JSON of configs and history: what the writer may write
SaveError = orbax_io.SaveError  # a save that failed: one line, the earlier epochs intact


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One restored epoch: where it came from, its configs, its history and the full training state."""

    path: Path  # DIR/checkpoints/<epoch> or DIR/best/<epoch>
    epoch: int  # 1-based: epochs completed
    config: TrainConfig
    model_config: model.ModelConfig
    history: dict[str, list[float]]
    state: TrainState
    keep: int
    save_best: bool
    dataset_digest: Digest | None = None  # of the files it was trained on (None: a dataset by name, an older run)
    save_every: int = 1

    @property
    def classifier(self) -> model.Classifier:
        return model.Classifier(self.state.params, self.model_config)


def _check_run_dir(directory: Path) -> None:
    if not directory.exists():
        raise UserInputError(
            f"{directory}: no such directory; expected a run directory, made by training with an output directory"
        )
    if not directory.is_dir():
        raise UserInputError(
            f"{directory}: not a directory; expected a run directory, made by training with an output directory"
        )


STARTS_AGAIN = "a run interrupted before its first epoch was saved can be started again with the same output directory"


def _latest_step(root: Path, what: str) -> int:
    steps = orbax_io.complete_steps(root)
    if not steps:
        raise UserInputError(f"{root}: holds no complete {what} ({STARTS_AGAIN})")
    return steps[-1]


def _claimed_only(directory: Path) -> bool:
    """Whether ``directory`` holds nothing but what claiming it for a run writes (a run stopped before its first
    save began): its lock file, a write probe, or nothing."""
    names = files.first_names(directory, 64) or []
    return len(claim_files(names)) == len(names)


def holds_run(directory: Path) -> Path | None:
    """What makes ``directory`` a run that a fresh one must not overwrite: its ``metrics.json`` or a complete
    epoch (checkpoints or best); None if there is none (e.g. a run interrupted during its first save)."""
    if (directory / METRICS).exists():
        return directory / METRICS
    for name in (CHECKPOINTS, BEST):
        steps = orbax_io.complete_steps(directory / name)
        if steps:
            return directory / name / str(steps[-1])
    return None


def restore(directory: str | os.PathLike, *, best: bool = False) -> Checkpoint:
    """The latest complete epoch of run ``directory`` (``best=True``: the best one by val_loss).

    Safe while another process trains into ``directory``: an epoch deleted while it is read (the run keeps
    only its last few) is replaced by the newest one."""
    directory = Path(directory)
    _check_run_dir(directory)
    root = directory / (BEST if best else CHECKPOINTS)
    if not root.is_dir():
        if best and (directory / CHECKPOINTS).is_dir():
            raise FieldError(
                "save_best", f"has no best checkpoint ({root} is missing); train with {{field}}", where=directory
            )
        if not best and _claimed_only(directory):
            raise UserInputError(f"{directory}: holds no checkpoint ({STARTS_AGAIN})")
        raise UserInputError(
            f"{directory}: not an mlpjax checkpoint directory (no {CHECKPOINTS}/ inside); "
            "a run directory is made by training with an output directory"
        )
    what = "best checkpoint" if best else "checkpoint"
    for attempt in range(READ_ATTEMPTS):
        step = _latest_step(root, what)
        try:
            return restore_step(root, step)
        except UserInputError:
            # a live run keeps its last few epochs and deletes older ones as it saves: an epoch that vanished
            # while it was read was superseded, so read the newest again; an epoch still there is truly bad
            if (root / str(step)).is_dir() or attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def restore_step(root: Path, step: int) -> Checkpoint:
    """Epoch ``step`` of the CheckpointManager directory ``root``; any inconsistency is a UserInputError."""
    return _restore_step(root, step)  # through orbax_io.EpochReader's guards


def _restore_step(root: Path, step: int) -> Checkpoint:
    with orbax_io.EpochReader(root, step) as epoch_reader:
        path, meta = epoch_reader.path, epoch_reader.meta(FORMAT, FORMAT_VERSION)
        plugins.check_parts(meta.get("train_config"), root.parent)  # a registered part missing: which, how to add
        try:
            config = TrainConfig.from_dict(meta["train_config"])
            model_config = model.ModelConfig(**meta["model_config"])
            history = {k: [float(v) for v in meta["history"][k]] for k in HISTORY_KEYS}
            history.update({k: [float(x) for x in v] for k, v in meta["history"].items() if k not in history})
            epoch = check_int("epoch", meta["epoch"])
            keep, save_best = check_int("keep", meta["keep"]), meta["save_best"]
            save_every = check_int("save_every", meta.get("save_every", 1))  # 1: saved before it was recorded
            if not isinstance(save_best, bool):
                raise FieldError("save_best", f"must be true or false, got {save_best!r}")
            digest = meta.get("dataset_digest")
            dataset_digest = None if digest is None else Digest.from_dict(digest)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
            # UserInputError is a ValueError: its message is kept
            raise UserInputError(f"{path}: the checkpoint's metadata is invalid ({orbax_io.short_error(e)})") from None
        if model_config != config.model_config(model_config.input_dim, model_config.num_classes):
            raise UserInputError(f"{path}: the saved model {model_config} does not match the saved training config")
        if epoch != step or any(len(v) != epoch for v in history.values()):
            raise UserInputError(
                f"{path}: the metadata says epoch {epoch} with {len(history['loss'])} epochs of "
                f"history; expected {step}; the checkpoint is inconsistent"
            )
        abstract = abstract_state(config, model_config)
        arrays = epoch_reader.arrays(abstract.arrays(), f"the saved architecture ({model_config})")
    orbax_io.check_finite(path, (arrays["params"], arrays["opt_state"]))
    state = abstract.replace(**jax.device_put(arrays))  # no per-leaf program (jnp.asarray compiles one a shape)
    return Checkpoint(
        path=path,
        epoch=epoch,
        config=config,
        model_config=model_config,
        history=history,
        state=state,
        keep=keep,
        save_best=save_best,
        dataset_digest=dataset_digest,
        save_every=save_every,
    )


def load_model(directory: str | os.PathLike, best: bool = False) -> model.Classifier:
    """The model saved in run ``directory``, rebuilt from its saved config alone (``best``: the best epoch)."""
    return restore(directory, best=best).classifier


class Writer:
    """Saves epochs into ``DIR/checkpoints`` (the last ``keep``) and, with ``save_best``, ``DIR/best``, through
    :class:`mlpjax.runs.orbax_io.EpochWriter` (its guards: one-line :class:`SaveError`, bounded metadata).
    ``save_every`` is recorded in each epoch (a resumed run takes it); which epochs are saved is ``fit``'s
    choice (:func:`mlpjax.training.loop.saves`).

    Use :meth:`save` for the epochs ``fit`` saves, and with ``last=False`` after every epoch (the best is saved
    when it is reached). Saves are synchronous: when one returns, the epoch is on disk. With several processes
    (``jax.distributed``) every process calls them with the same state: Orbax's save is collective (the
    processes meet at barriers) and process 0 alone writes, onto a shared filesystem.
    """

    def __init__(
        self,
        directory: Path,
        config: TrainConfig,
        *,
        keep: int,
        save_best: bool,
        best_val_loss: float = math.inf,
        dataset_digest: Digest | None = None,
        save_every: int = 1,
    ):
        if keep < 1:
            raise FieldError("keep", f"must be at least 1, got {keep}")
        self.directory, self.config, self.keep, self.save_best = directory, config, keep, save_best
        self.dataset_digest = dataset_digest
        self.save_every = check_int("save_every", save_every)
        self.best_val_loss = best_val_loss
        self._epochs = orbax_io.EpochWriter(directory)  # creates nothing before the first save

    def save(self, epoch: int, state: TrainState, history: Mapping[str, list[float]], *, last: bool = True) -> None:
        """Save epoch ``epoch`` (1-based) and, if its val_loss is the lowest yet, also as the best.

        ``last=False``: only consider it for the best (an epoch that ``fit`` does not save, or a resumed one).
        Raises :class:`SaveError` if it cannot be written, after removing what it had begun to write.
        """
        val_loss = history["val_loss"][-1]
        into_best = self.save_best and val_loss < self.best_val_loss
        into = {**({CHECKPOINTS: self.keep} if last else {}), **({BEST: 1} if into_best else {})}
        if not into:
            return
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "epoch": epoch,
            "train_config": self.config.to_dict(),
            "model_config": dataclasses.asdict(state.model_config),
            "history": {k: list(v) for k, v in history.items()},
            "keep": self.keep,
            "save_best": self.save_best,
            **({"dataset_digest": self.dataset_digest.to_dict()} if self.dataset_digest is not None else {}),
            "save_every": self.save_every,
        }
        self._epochs.save(epoch, state.arrays(), meta, into)
        if into_best:
            self.best_val_loss = val_loss

    def close(self) -> None:
        """Close the Orbax managers (after a failed save, quietly) and the path alias."""
        self._epochs.close()
