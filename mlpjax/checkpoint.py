"""Checkpoints with Orbax: save every epoch, resume, keep the best epoch by val_loss, load a trained model.

A run directory ``DIR`` (``mlpjax train --output DIR``) holds::

    DIR/checkpoints/<epoch>/   the last ``keep`` epochs (an Orbax CheckpointManager with ``max_to_keep``)
    DIR/best/<epoch>/          with ``save_best``: the epoch of lowest val_loss so far (Keras' save_best_only)
    DIR/metrics.json           the whole history, rewritten atomically after every epoch

Each ``<epoch>/`` has two Orbax items: ``state``, the arrays of the :class:`~mlpjax.train.TrainState` (step,
params, opt_state, the raw uint32 PRNG key) written by ``StandardSave`` (tensorstore), and ``meta``, JSON
(``JsonSave``): the training and model configs, the history so far and a SHA-256 of the state arrays. Loading
reads the JSON first, rebuilds the abstract state from the configs and restores the arrays into it, so
nothing is unpickled and a checkpoint cannot run code. Orbax writes each epoch into a temporary directory
and renames it when complete: a process killed at any moment leaves the previous epochs loadable.
Bad checkpoints raise :class:`~mlpjax.errors.UserInputError` naming the path; nothing is ever overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import data as data_lib
from mlpjax import distributed, fileio, model, train
from mlpjax.errors import UserInputError

FORMAT = "mlpjax-checkpoint"
FORMAT_VERSION = 1
CHECKPOINTS, BEST, METRICS = "checkpoints", "best", "metrics.json"
DEFAULT_KEEP = 3
# Flags that may change when resuming; every other TrainConfig field is part of the saved architecture/objective.
RESUMABLE_CHANGES = ("epochs", "data_dir", "lr", "batch_size")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One restored epoch: where it came from, its configs, its history and the full training state."""

    path: Path  # DIR/checkpoints/<epoch> or DIR/best/<epoch>
    epoch: int  # 1-based: epochs completed
    config: train.TrainConfig
    model_config: model.ModelConfig
    history: dict[str, list[float]]
    state: train.TrainState
    keep: int
    save_best: bool

    @property
    def classifier(self) -> model.Classifier:
        return model.Classifier(self.state.params, self.model_config)


def _arrays(state: train.TrainState) -> dict[str, Any]:
    """The array leaves of a TrainState, as the ``state`` item is saved."""
    return {"step": state.step, "params": state.params, "opt_state": state.opt_state, "key": state.key}


def state_digest(arrays: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes (in tree order): detects silent corruption."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(arrays)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _ocp():
    import orbax.checkpoint as ocp  # imported lazily: it adds ~2 s to start-up

    return ocp


def _reader(root: Path):
    """A CheckpointManager that only reads ``root`` (creates nothing, writes no root metadata)."""
    ocp = _ocp()
    return ocp.CheckpointManager(root.absolute(), options=ocp.CheckpointManagerOptions(create=False))


def _short(e: BaseException) -> str:
    """The first line of an exception (without TensorStore's pointer to more details), for one-line errors."""
    text = (str(e).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0]
    return f"{type(e).__name__}: {text[:200]}"


def _check_run_dir(directory: Path) -> None:
    if not directory.exists():
        raise UserInputError(f"{directory}: no such directory (train one with: mlpjax train --output {directory})")
    if not directory.is_dir():
        raise UserInputError(f"{directory}: not a directory; expected a run directory from mlpjax train --output")


def _latest_step(root: Path, what: str) -> int:
    try:
        step = _reader(root).latest_step()
    except Exception as e:  # orbax raises many types on unreadable step metadata
        raise UserInputError(f"{root}: cannot list the checkpoints ({_short(e)}); the directory is corrupted") from None
    if step is None:
        raise UserInputError(f"{root}: holds no complete {what}")
    return step


def restore(directory: str | os.PathLike, *, best: bool = False) -> Checkpoint:
    """The latest complete epoch of run ``directory`` (``best=True``: the best one by val_loss)."""
    directory = Path(directory)
    _check_run_dir(directory)
    root = directory / (BEST if best else CHECKPOINTS)
    if not root.is_dir():
        if best and (directory / CHECKPOINTS).is_dir():
            raise UserInputError(f"{directory}: has no best checkpoint ({root} is missing); train with --save-best")
        raise UserInputError(f"{directory}: not an mlpjax checkpoint directory (no {CHECKPOINTS}/ inside); "
                             f"create one with: mlpjax train --output {directory}")
    return restore_step(root, _latest_step(root, "best checkpoint" if best else "checkpoint"))


def _abstract_state(config: train.TrainConfig, model_config: model.ModelConfig) -> train.TrainState:
    """The TrainState of ``config`` as shapes and dtypes, with its static fields (model, optimizer, loss)."""
    return jax.eval_shape(lambda: train.create_train_state(jax.random.PRNGKey(config.seed), config, model_config))


def restore_step(root: Path, step: int) -> Checkpoint:
    """Epoch ``step`` of the CheckpointManager directory ``root``; any inconsistency is a UserInputError."""
    ocp = _ocp()
    path = root / str(step)
    manager = _reader(root)
    try:
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:
        raise UserInputError(f"{path}: cannot read the checkpoint's metadata ({_short(e)}); "
                             "it is truncated or corrupted") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserInputError(f"{path}: not an mlpjax checkpoint (its metadata has no format {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise UserInputError(f"{path}: checkpoint format version {meta.get('version')!r}; "
                             f"this mlpjax reads version {FORMAT_VERSION}")
    try:
        config = train.TrainConfig.from_dict(meta["train_config"])
        model_config = model.ModelConfig(**meta["model_config"])
        history = {k: [float(v) for v in meta["history"][k]] for k in train.HISTORY_KEYS}
        epoch, digest = int(meta["epoch"]), str(meta["digest"])
        keep, save_best = int(meta["keep"]), bool(meta["save_best"])
    except (KeyError, TypeError, ValueError) as e:  # UserInputError is a ValueError: its message is kept
        raise UserInputError(f"{path}: the checkpoint's metadata is invalid ({_short(e)})") from None
    if model_config != config.model_config(model_config.input_dim, model_config.num_classes):
        raise UserInputError(f"{path}: the saved model {model_config} does not match the saved training config")
    if epoch != step or any(len(v) != epoch for v in history.values()):
        raise UserInputError(f"{path}: the metadata says epoch {epoch} with {len(history['loss'])} epochs of "
                             f"history; expected {step}; the checkpoint is inconsistent")
    abstract = _abstract_state(config, model_config)
    try:
        arrays = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_arrays(abstract)))).state
    except Exception as e:
        raise UserInputError(f"{path}: cannot restore the saved arrays ({_short(e)}); the checkpoint is "
                             f"truncated or corrupted, or does not match its saved architecture") from None
    expected = jax.tree_util.tree_map(lambda a: (a.shape, np.dtype(a.dtype)), _arrays(abstract))
    if jax.tree_util.tree_map(lambda a: (np.shape(a), np.asarray(a).dtype), arrays) != expected:
        raise UserInputError(f"{path}: the saved arrays' shapes do not match the saved architecture "
                             f"({model_config}); the checkpoint is inconsistent")
    if state_digest(arrays) != digest:
        raise UserInputError(f"{path}: the saved arrays do not match their checksum; the checkpoint is corrupted")
    state = abstract.replace(**jax.tree_util.tree_map(jnp.asarray, arrays))
    return Checkpoint(path=path, epoch=epoch, config=config, model_config=model_config, history=history,
                      state=state, keep=keep, save_best=save_best)


def load_model(directory: str | os.PathLike, best: bool = False) -> model.Classifier:
    """The model saved in run ``directory``, rebuilt from its saved config alone (``best``: the best epoch)."""
    return restore(directory, best=best).classifier


def dataset_for(checkpoint: Checkpoint, dataset: str | None = None,
             data_dir: str | os.PathLike | None = None) -> data_lib.Dataset:
    """The dataset the checkpoint was trained on (or ``dataset``), checked to fit its model."""
    name = dataset or checkpoint.config.dataset
    folder = data_dir if data_dir is not None else (checkpoint.config.data_dir if name == checkpoint.config.dataset
                                                    else None)
    ds = data_lib.load_dataset(name, folder)
    m = checkpoint.model_config
    if (ds.input_dim, ds.num_classes) != (m.input_dim, m.num_classes):
        raise UserInputError(f"{checkpoint.path}: the model takes {m.input_dim} features and {m.num_classes} "
                             f"classes but dataset {name!r} has {ds.input_dim} and {ds.num_classes}")
    return ds


def evaluate(directory: str | os.PathLike, *, dataset: str | None = None, data_dir: str | os.PathLike | None = None,
             best: bool = False) -> dict[str, Any]:
    """Test loss and metrics of a saved model: ``checkpoint``, ``epoch``, ``dataset``, ``test_loss``,
    ``test_accuracy`` and ``test_metrics`` (loss, accuracy, precision, recall, f1_score, mse, mae)."""
    ckpt = restore(directory, best=best)
    ds = dataset_for(ckpt, dataset, data_dir)
    metrics = train.evaluate(ckpt.state.params, ds.x_test, ds.y_test, config=ckpt.model_config,
                             loss_name=ckpt.config.loss)
    return {"checkpoint": str(ckpt.path), "epoch": ckpt.epoch, "dataset": ds.name, "test_loss": metrics["loss"],
            "test_accuracy": metrics["accuracy"], "test_metrics": metrics}


class Writer:
    """Saves epochs into ``DIR/checkpoints`` (the last ``keep``) and, with ``save_best``, ``DIR/best``.

    Use as ``fit``'s ``on_epoch_end`` hook. Saves are synchronous: when it returns, the epoch is on disk.
    With several processes (``jax.distributed``) every process calls :meth:`save` with the same state: Orbax's
    save is collective (the processes meet at barriers) and process 0 alone writes, onto a shared filesystem.
    """

    def __init__(self, directory: Path, config: train.TrainConfig, *, keep: int, save_best: bool,
                 best_val_loss: float = math.inf):
        if keep < 1:
            raise UserInputError(f"--keep must be at least 1, got {keep}")
        self.directory, self.config, self.keep, self.save_best = directory, config, keep, save_best
        self.best_val_loss = best_val_loss
        self.last = self.best = None  # opened at the first save: a run that saves nothing creates nothing

    def _manager(self, name: str, max_to_keep: int):
        ocp = _ocp()
        return ocp.CheckpointManager((self.directory / name).absolute(), options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=False, cleanup_tmp_directories=True))

    def save(self, epoch: int, state: train.TrainState, history: Mapping[str, list[float]], *,
             last: bool = True) -> None:
        """Save epoch ``epoch`` (1-based) and, if its val_loss is the lowest yet, also as the best.

        ``last=False``: only consider it for the best (a resumed epoch, already among the last ones).
        """
        ocp = _ocp()
        # Host copies: the same bytes on every process, written once by process 0.
        arrays = jax.device_get(_arrays(state))
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "epoch": epoch, "train_config": self.config.to_dict(),
                "model_config": dataclasses.asdict(state.model), "history": {k: list(v) for k, v in history.items()},
                "digest": state_digest(arrays), "keep": self.keep, "save_best": self.save_best}
        args = ocp.args.Composite(state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta))
        if last:
            self.last = self.last or self._manager(CHECKPOINTS, self.keep)
            self.last.save(epoch, args=args, force=True)
        val_loss = history["val_loss"][-1]
        if self.save_best and val_loss < self.best_val_loss:
            self.best = self.best or self._manager(BEST, 1)
            self.best.save(epoch, args=args, force=True)
            self.best_val_loss = val_loss

    def close(self) -> None:
        for manager in (self.last, self.best):
            if manager is not None:
                manager.close()


def _progress_record(config: train.TrainConfig, model_config: model.ModelConfig,
                     history: Mapping[str, list[float]], dataset: data_lib.Dataset) -> dict[str, Any]:
    """metrics.json while training: the history so far and the last epoch's test figures."""
    return {"complete": False, "epochs_done": len(history["loss"]), "test_loss": history["val_loss"][-1],
            "test_accuracy": history["val_accuracy"][-1], "history": {k: list(v) for k, v in history.items()},
            "config": config.to_dict(), "model": dataclasses.asdict(model_config), "dataset": dataset.describe()}


@dataclasses.dataclass(frozen=True)
class Run:
    """A training run into ``directory``: fresh (``checkpoint`` None) or resumed from ``checkpoint``."""

    directory: Path
    config: train.TrainConfig
    keep: int
    save_best: bool
    checkpoint: Checkpoint | None = None

    def fit(self, dataset: data_lib.Dataset | None = None, *, quiet: bool = True,
            log: Callable[[str], None] | None = None, mesh: jax.sharding.Mesh | None = None) -> train.FitResult:
        """Train up to ``config.epochs`` epochs in all, saving each; metrics.json holds the whole history.

        ``mesh`` is passed to :func:`mlpjax.train.fit`. With several processes, every process calls this alike
        (the checkpoint saves are collective); only process 0 writes ``metrics.json``.
        """
        ckpt = self.checkpoint
        dataset = dataset or data_lib.load_dataset(self.config.dataset, self.config.data_dir)
        model_config = self.config.model_config(dataset.input_dim, dataset.num_classes)
        if ckpt is not None and ckpt.model_config != model_config:
            raise UserInputError(f"{ckpt.path}: the saved model ({ckpt.model_config.input_dim} features, "
                                 f"{ckpt.model_config.num_classes} classes) does not fit dataset "
                                 f"{dataset.name!r} ({dataset.input_dim} features, {dataset.num_classes} classes)")
        best_val_loss = math.inf
        if ckpt is not None and self.save_best and (self.directory / BEST).is_dir():
            best_val_loss = restore(self.directory, best=True).history["val_loss"][-1]
        primary = distributed.is_primary()
        writer = Writer(self.directory, self.config, keep=self.keep, save_best=self.save_best,
                        best_val_loss=best_val_loss)
        if ckpt is not None and self.save_best:
            # The resumed epoch may be better than DIR/best: a kill between the two saves of an epoch, or
            # --save-best first given now (then the best is tracked from the resumed epoch on).
            writer.save(ckpt.epoch, ckpt.state, ckpt.history, last=False)

        def on_epoch_end(epoch, state, history):
            writer.save(epoch, state, history)
            if primary:
                fileio.write_json_atomic(self.directory / METRICS,
                                         _progress_record(self.config, model_config, history, dataset))

        try:
            result = train.fit(self.config, dataset, quiet=quiet, log=log,
                               initial_state=ckpt.state if ckpt else None,
                               initial_history=ckpt.history if ckpt else None, on_epoch_end=on_epoch_end,
                               mesh=mesh)
        except train.TrainingDiverged as e:
            raise train.TrainingDiverged(f"{e}; the checkpoints in {self.directory} are kept as they were") from None
        finally:
            writer.close()
        if primary:
            record = {"complete": True, "epochs_done": len(result.history["loss"]),
                      "resumed_from_epoch": ckpt.epoch if ckpt else 0, **result.record()}
            fileio.write_json_atomic(self.directory / METRICS, record)
        return result


def start(directory: str | os.PathLike, config: train.TrainConfig, *, keep: int | None = None,
          save_best: bool = False) -> Run:
    """A fresh run into ``directory``, which must not hold a run already (nothing is overwritten)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"--output {directory}: exists and is not a directory")
    for name in (CHECKPOINTS, BEST, METRICS):
        if (directory / name).exists():
            raise UserInputError(f"--output {directory}: already holds a training run ({directory / name}); "
                                 f"continue it with --resume {directory} or choose another --output")
    return Run(directory, config, keep=DEFAULT_KEEP if keep is None else keep, save_best=save_best)


def resume(directory: str | os.PathLike, changes: Mapping[str, Any] | None = None, *, keep: int | None = None,
           save_best: bool = False) -> Run:
    """Continue run ``directory`` from its latest complete epoch.

    ``changes``: TrainConfig fields given on the command line. Only :data:`RESUMABLE_CHANGES` may differ from
    the saved config (``epochs`` is the total, at least the epochs done); ``keep`` and ``save_best`` default
    to the saved ones. Reads only: raises UserInputError before anything is written.
    """
    ckpt = restore(directory)
    saved = ckpt.config.to_dict()
    changes = {k: list(v) if k == "hidden" else v for k, v in (changes or {}).items()}
    for name, value in changes.items():
        if name not in saved:
            raise UserInputError(f"unknown training setting {name!r}")
        if name not in RESUMABLE_CHANGES and value != saved[name]:
            flag = "--" + name.replace("_", "-")
            shown = " ".join(map(str, value)) if isinstance(value, list) else value
            raise UserInputError(f"{ckpt.path}: {flag} {shown} contradicts the checkpoint ({name} "
                                 f"{saved[name]!r}); drop the flag to resume with the saved settings, or train "
                                 f"a new model with another --output")
    config = train.TrainConfig.from_dict({**saved, **changes})
    if config.epochs < ckpt.epoch:
        raise UserInputError(f"--epochs {config.epochs}: {directory} already holds {ckpt.epoch} epochs; "
                             f"--epochs is the total, so give at least {ckpt.epoch}")
    # The optimizer is a static field of the state: rebuild it, in case --lr changed.
    state = ckpt.state.replace(tx=_abstract_state(config, ckpt.model_config).tx)
    return Run(Path(directory), config, keep=ckpt.keep if keep is None else keep,
               save_best=save_best or ckpt.save_best, checkpoint=dataclasses.replace(ckpt, state=state))
