"""A sweep's folder: its plan and a checkpoint of every group after its epochs, so that it can be resumed.

``DIR`` (``mlpjax sweep --output DIR``) holds::

    DIR/sweep.json        the plan: the strategy, every model's flat config, ``save_every`` and the digest of
                          the dataset's files (written before training; resuming after those files changed is
                          refused)
    DIR/groups/<g>/<e>/   vmap: group g's stacked state after epoch e (an Orbax CheckpointManager, last 2 kept)
    DIR/runs/<i>/         sequential: model i's run directory (mlpjax.runs.run: checkpoints/, metrics.json)

Either saves as ``mlpjax train --output`` does: every ``save_every``-th epoch, the first and the last
(:func:`mlpjax.training.loop.saves`); a resumed sweep trains the epochs after the last saved one again, to the
same numbers.

As in :mod:`mlpjax.runs.checkpoint`, each group epoch is two Orbax items: ``state``, the stacked arrays
(:func:`mlpjax.sweep.stack.stack_arrays`: step, params, opt_state with the learning rates, key, dropout_rate) and
``meta``, JSON: the group's configs, model config, the histories so far and a SHA-256 of the arrays. Restoring
reads the JSON, rebuilds the abstract stacked state from the configs and restores the arrays into it: nothing
is unpickled.

Saving and restoring go through :class:`mlpjax.runs.orbax_io.EpochWriter` and
:class:`~mlpjax.runs.orbax_io.EpochReader`, as a run's checkpoints do, with the same guards: a failed save (a full
disk) is one line (:class:`~mlpjax.runs.orbax_io.SaveError`), its partial files removed and the earlier epochs
kept; the metadata is bounded; a restore checks sizes against the files and the memory before allocating,
then shapes, the digest and (for every model whose history is finite) finite weights. A sequential sweep's
models are run directories, saved by :mod:`mlpjax.runs.checkpoint` itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlpjax import files, memory, plugins
from mlpjax.core.config import TrainConfig
from mlpjax.core.model import ModelConfig
from mlpjax.data.digest import Digest
from mlpjax.errors import FieldError, UserInputError, check_int
from mlpjax.runs import checkpoint, orbax_io, run
from mlpjax.runs.run import refuse_foreign_files
from mlpjax.sweep import stack
from mlpjax.sweep.train import GroupStart
from mlpjax.training.result import HISTORY_KEYS, History

FORMAT, FORMAT_VERSION = "mlpjax-sweep", 1
PLAN, GROUPS, RUNS = "sweep.json", "groups", "runs"
KEEP = 2
BEST = "best_params"  # the stacked best weights of the models whose early stopping keeps them
MAX_PLAN_BYTES = 256 * 2**20  # a plan is about 600 bytes a model


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a sweep trains: its models and the strategy (``"vmap"`` or ``"sequential"``, resolved), how often its
    checkpoints are saved (``save_every`` epochs, a positive int), and the digest of the files its dataset was read
    from (None: a dataset by name)."""

    configs: list[TrainConfig]
    strategy: str
    save_every: int = 1
    dataset_digest: Digest | None = None

    def __post_init__(self):
        object.__setattr__(self, "save_every", check_int("save_every", self.save_every))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "strategy": self.strategy,
            "save_every": self.save_every,
            "configs": [c.to_dict() for c in self.configs],
            **({"dataset_digest": self.dataset_digest.to_dict()} if self.dataset_digest is not None else {}),
        }


def load_plan(directory: str | os.PathLike) -> Plan:
    """The plan saved in sweep folder ``directory``; a missing or bad one is a UserInputError naming it.

    The file is read as every file mlpjax reads: a regular file only (a FIFO or a link to a device is refused
    unread), at most :data:`MAX_PLAN_BYTES`, its structure checked before it is used."""
    path = Path(directory) / PLAN
    if not os.path.lexists(path):
        if _plan_leftovers(Path(directory)) is not None:  # empty, or the plan's temporary files alone
            raise UserInputError(
                f"{directory}: holds no {PLAN} (a sweep interrupted before its plan was saved can be started "
                "again with the same output folder)"
            )
        raise UserInputError(f"{directory}: not a sweep folder (no {PLAN}); start one with an output folder")
    with files.open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_PLAN_BYTES:
            raise UserInputError(
                f"{path}: {memory.format_bytes(size)}; a sweep plan is at most "
                f"{memory.format_bytes(MAX_PLAN_BYTES)}: it is not one"
            )
        text = f.read(MAX_PLAN_BYTES + 1)
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise UserInputError(f"{path}: not valid JSON ({orbax_io.short_error(e)})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != FORMAT_VERSION:
        raise UserInputError(f"{path}: not an mlpjax sweep plan of version {FORMAT_VERSION}")
    configs, strategy = d.get("configs"), d.get("strategy")
    if (
        strategy not in ("vmap", "sequential")
        or not isinstance(configs, list)
        or not configs
        or not all(isinstance(c, dict) for c in configs)
    ):
        raise UserInputError(
            f"{path}: the plan is invalid (expected a strategy, vmap or sequential, and a non-empty list of configs)"
        )
    for c in configs:
        plugins.check_parts(c, directory, "sweep")  # a registered part missing: which, how to register it
    try:
        digest = d.get("dataset_digest")
        return Plan(
            [TrainConfig.from_dict(c) for c in configs],
            strategy,
            d.get("save_every", 1),
            None if digest is None else Digest.from_dict(digest),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError) as e:
        # UserInputError is a ValueError: its message is kept
        raise UserInputError(f"{path}: the plan is invalid ({orbax_io.short_error(e)})") from None


def remove_sweep(directory: Path) -> None:
    """Remove what an earlier sweep wrote into ``directory``: its report (``results.json``, ``summary.md``,
    ``curves.png``, ``tensorboard/``), ``groups/``, ``runs/`` and the plan last, so that a folder stopped part way
    through is still a sweep; a failure is one line naming the file."""
    from mlpjax.sweep import hparams, report  # the report's names (report imports matplotlib: only here)

    for name in (report.RESULTS, report.SUMMARY, report.CURVES, hparams.TENSORBOARD, GROUPS, RUNS, PLAN):
        path = directory / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except OSError as e:
            raise FieldError(
                "overwrite", f"{{field}}: {path}: cannot remove the earlier sweep's file ({e.strerror})"
            ) from None


def _plan_leftovers(directory: Path) -> list[str] | None:
    """The temporary files that a plan's interrupted writing left in folder ``directory``, if it holds nothing
    else (among its first 64 entries); None where it holds more, or does not exist."""
    names = files.first_names(directory, 64)
    leftovers = [n for n in names or [] if files.temporary_of(n, PLAN)]
    return leftovers if names is not None and len(leftovers) == len(names) else None


@dataclasses.dataclass
class SweepCheckpoints:
    """The hooks :func:`mlpjax.sweep.train.run_sweep` calls to save every epoch into ``directory`` and resume."""

    directory: Path
    plan: Plan
    writer: orbax_io.EpochWriter | None = None  # the groups' epochs (made at the first save)

    @classmethod
    def open(
        cls, output: str | os.PathLike, plan: Plan, *, resume: bool = False, overwrite: bool = False
    ) -> SweepCheckpoints:
        """A new sweep folder ``output`` (refused if it holds a sweep, unless ``overwrite``: then what the
        earlier sweep wrote there is removed first, :func:`remove_sweep`) or, with ``resume``, the existing
        one."""
        directory = Path(output)
        if not resume:
            if directory.exists() and not directory.is_dir():
                raise FieldError("output", f"{{field}} {directory}: exists and is not a directory")
            replaced = overwrite and (directory / PLAN).exists()
            if replaced:  # a sweep's folder, the user's files in it kept
                refuse_foreign_files(directory, ours=(PLAN,))
                remove_sweep(directory)
            if (directory / PLAN).exists():
                raise FieldError(
                    "output",
                    f"{{field}} {directory}: already holds a sweep; continue it with "
                    f"{{resume}} {directory} or choose another {{field}}",
                    also=("resume",),
                )
            if not replaced:  # nothing of the user's is replaced; a plan whose writing a kill stopped is written again
                refuse_foreign_files(directory, ours=(GROUPS, RUNS), written=(PLAN,))
            text = json.dumps(plan.to_dict(), indent=2) + "\n"
            if len(text.encode()) > MAX_PLAN_BYTES:  # what a sweep writes, it must read back (load_plan)
                raise UserInputError(
                    f"the plan of {len(plan.configs)} models would take "
                    f"{memory.format_bytes(len(text.encode()))}, more than the "
                    f"{memory.format_bytes(MAX_PLAN_BYTES)} a sweep folder may hold; sweep fewer "
                    "models"
                )
            try:  # the checks a run's output gets: a parent that is a file, a read-only disk, a broken link
                files.make_folder(directory)
                files.write_text(directory / PLAN, text, replace=False)
            except UserInputError as e:
                raise FieldError("output", f"{{field}} {e}") from None
            files.remove_temporaries(directory, (PLAN,))  # once the plan is in place, none can be needed
        for g in files.first_names(directory / GROUPS, 100_000) or []:  # what a kill in a group's save left
            orbax_io.remove_partial(directory / GROUPS / g, tries=1, settled=1)
        return cls(directory, plan)

    @property
    def save_every(self) -> int:
        """Epochs between two saves (the plan's)."""
        return self.plan.save_every

    def group_saver(self, g: int) -> Callable[[int, GroupStart], None]:
        """``save`` of group ``g`` (:func:`mlpjax.sweep.train.train_group_vmap`): saves where it could start again
        (its stacked state, histories and each model's best weights where early stopping keeps them) as epoch
        ``epoch``; a failure is :class:`~mlpjax.runs.orbax_io.SaveError` (one line; the group's earlier epochs
        kept)."""

        def save(epoch: int, start: GroupStart) -> None:
            state, best = start.state, start.best or [None] * len(start.histories)
            arrays = stack.stack_arrays(state)
            if any(b is not None for b in best):  # models without best weights yet: their weights now, unused
                arrays = {
                    **arrays,
                    BEST: jax.tree_util.tree_map(
                        lambda *a: np.stack(a),
                        *[stack.member(state, k).params if b is None else b[1] for k, b in enumerate(best)],
                    ),
                }
            meta = {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "epoch": epoch,
                "configs": [c.to_dict() for c in self._configs(g)],
                "model_config": dataclasses.asdict(state.model_config),
                "histories": [{k: list(v) for k, v in h.items()} for h in start.histories],
                "best_epochs": [None if b is None else b[0] for b in best],
            }
            if self.writer is None:
                self.writer = orbax_io.EpochWriter(self.directory)
            self.writer.save(epoch, arrays, meta, {f"{GROUPS}/{g}": KEEP})

        return save

    def _configs(self, g: int) -> list[TrainConfig]:
        from mlpjax.sweep.train import groups

        return [self.plan.configs[i] for i in groups(self.plan.configs)[g]]

    def group_start(self, g: int, configs: Sequence[TrainConfig]) -> GroupStart | None:
        """Group ``g``'s latest saved epoch (None: none saved), checked against ``configs``."""
        root = self.directory / GROUPS / str(g)
        steps = orbax_io.complete_steps(root)  # the epochs Orbax finished (a half-made or empty one is passed over)
        if not steps:
            return None
        step = steps[-1]
        with orbax_io.EpochReader(root, step) as epoch_reader:
            path, meta = epoch_reader.path, epoch_reader.meta(FORMAT, FORMAT_VERSION, "mlpjax sweep checkpoint")
            try:
                saved = [TrainConfig.from_dict(c) for c in meta["configs"]]
                model_config = ModelConfig(**meta["model_config"])
                histories = [_history(h) for h in meta["histories"]]
                epoch = check_int("epoch", meta["epoch"])
                best_epochs = [
                    None if e is None else check_int("best_epochs", e)
                    for e in meta.get("best_epochs") or [None] * len(histories)
                ]
            except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
                # UserInputError is a ValueError: its message is kept
                raise UserInputError(f"{path}: the group's metadata is invalid ({orbax_io.short_error(e)})") from None
            if saved != list(configs):
                raise UserInputError(
                    f"{path}: the saved group does not match the sweep's plan; the folder is inconsistent"
                )
            # a model that stopped early or diverged has fewer epochs than the group; each at most the group's
            lengths = [{len(v) for v in h.values()} for h in histories]
            if (
                epoch != step
                or len(histories) != len(configs)
                or len(best_epochs) != len(configs)
                or any(len(n) != 1 or max(n) > step for n in lengths)
                or any(e is not None and e > len(h["loss"]) for e, h in zip(best_epochs, histories, strict=True))
            ):
                raise UserInputError(
                    f"{path}: the metadata says epoch {epoch} with {len(histories)} histories; "
                    f"expected {step} epochs of {len(configs)} models; the checkpoint is inconsistent"
                )
            if not _same_architecture(model_config, configs[0]):
                raise UserInputError(
                    f"{path}: the saved model {model_config} does not match the sweep's plan; the "
                    "checkpoint is inconsistent"
                )
            abstract = jax.eval_shape(lambda: stack.group_state(configs, model_config))
            wanted = stack.stack_arrays(abstract)
            if any(e is not None for e in best_epochs):
                wanted = {**wanted, BEST: abstract.params}
            arrays = epoch_reader.arrays(wanted, f"the group's architecture ({model_config})")
        best = [
            None if e is None else (e, jax.tree_util.tree_map(lambda a, k=k: np.asarray(a)[k], arrays[BEST]))
            for k, e in enumerate(best_epochs)
        ]
        arrays = {k: v for k, v in arrays.items() if k != BEST}
        for k, h in enumerate(histories):
            # a model still training has finite weights; one that diverged may not (frozen with them, or trained
            # on with NaN in its history): only the models whose history is the group's and finite are checked
            if len(h["loss"]) == step and all(math.isfinite(x) for v in h.values() for x in v):
                orbax_io.check_finite(
                    path,
                    jax.tree_util.tree_map(lambda a, k=k: np.asarray(a)[k], (arrays["params"], arrays["opt_state"])),
                    f"model {k + 1}'s saved weights or optimizer state",
                )
        return GroupStart(abstract.replace(**jax.tree_util.tree_map(jnp.asarray, arrays)), histories, best)

    def fit_for(self, i: int) -> Callable[..., Any]:
        """A ``fit`` for sequential model ``i``: its run directory ``DIR/runs/<i>``, resumed where it holds a run,
        else started (a model interrupted or failed before its first complete epoch starts again)."""

        def fit(config: TrainConfig, dataset, *, log=None, on_epoch_end=None):
            folder = self.directory / RUNS / str(i)
            saved = folder.is_dir() and checkpoint.holds_run(folder) is not None
            every = self.save_every
            one = (
                run.resume(folder, save_every=every)
                if saved
                else run.start(folder, config, keep=KEEP, save_every=every)
            )
            if one.config != run.absolute_paths(config):  # the run records the dataset's paths absolute
                one.close()
                raise UserInputError(f"{folder}: holds another model than the sweep's plan")
            return one.fit(dataset, log=log)

        return fit

    def close(self) -> None:
        """Close the Orbax managers and the path alias (after a failed save, quietly)."""
        if self.writer is not None:
            self.writer.close()


def _history(saved: Any) -> History:
    """A saved history: every key of :data:`HISTORY_KEYS` and any further ones, as lists of floats."""
    history = {k: [float(v) for v in saved[k]] for k in HISTORY_KEYS}
    history.update({k: [float(x) for x in v] for k, v in saved.items() if k not in history})
    return history


def _same_architecture(saved: ModelConfig, config: TrainConfig) -> bool:
    """Whether ``saved`` is ``config``'s model (for the saved data's sizes; a group's dropout rates are in its
    state)."""
    return dataclasses.replace(saved, dropout=0.0) == dataclasses.replace(
        config.model_config(saved.input_dim, saved.num_classes), dropout=0.0
    )
