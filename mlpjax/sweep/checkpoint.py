"""A sweep's folder: its plan and a checkpoint of every group after each epoch, so that it can be resumed.

``DIR`` (``mlpjax sweep --output DIR``) holds::

    DIR/sweep.json        the plan: the strategy and every model's flat config (written before training)
    DIR/groups/<g>/<e>/   vmap: group g's stacked state after epoch e (an Orbax CheckpointManager, last 2 kept)
    DIR/runs/<i>/         sequential: model i's run directory (mlpjax.runs.run: checkpoints/, metrics.json)

As in :mod:`mlpjax.runs.checkpoint`, each group epoch is two Orbax items: ``state``, the stacked arrays
(:func:`mlpjax.sweep.stack.stack_arrays`: step, params, opt_state with the learning rates, key, dropout_rate) and
``meta``, JSON: the group's configs, model config, the histories so far and a SHA-256 of the arrays. Restoring
reads the JSON, rebuilds the abstract stacked state from the configs and restores the arrays into it: nothing
is unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from mlpjax import files
from mlpjax.runs import run
from mlpjax.sweep import stack
from mlpjax.runs.checkpoint import CHECKPOINTS
from mlpjax.runs.orbax_io import complete_steps, set_aside_incomplete_steps, state_digest
from mlpjax.runs.orbax_io import orbax_checkpoint as _ocp
from mlpjax.runs.orbax_io import reader as _reader
from mlpjax.runs.orbax_io import short_error as _short
from mlpjax.core.config import TrainConfig
from mlpjax.errors import FieldError, UserInputError
from mlpjax.core.model import ModelConfig
from mlpjax.training.result import HISTORY_KEYS, History
from mlpjax.runs.orbax_io import PlainPath
from mlpjax.core.state import TrainState
from mlpjax.sweep.train import GroupStart

FORMAT, FORMAT_VERSION = "mlpjax-sweep", 1
PLAN, GROUPS, RUNS = "sweep.json", "groups", "runs"
KEEP = 2


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a sweep trains: its models and the strategy (``"vmap"`` or ``"sequential"``, resolved)."""

    configs: list[TrainConfig]
    strategy: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "strategy": self.strategy,
                "configs": [c.to_dict() for c in self.configs]}


def load_plan(directory: str | os.PathLike) -> Plan:
    """The plan saved in sweep folder ``directory``; a missing or bad one is a UserInputError naming it."""
    path = Path(directory) / PLAN
    try:
        d = json.loads(path.read_text())
    except OSError:
        raise UserInputError(f"{directory}: not a sweep folder (no {PLAN}); start one with an output folder") from None
    except ValueError as e:
        raise UserInputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != FORMAT_VERSION:
        raise UserInputError(f"{path}: not an mlpjax sweep plan of version {FORMAT_VERSION}")
    try:
        return Plan([TrainConfig.from_dict(c) for c in d["configs"]], str(d["strategy"]))
    except (KeyError, TypeError) as e:
        raise UserInputError(f"{path}: the plan is invalid ({_short(e)})") from None


@dataclasses.dataclass
class SweepCheckpoints:
    """The hooks :func:`mlpjax.sweep.train.run_sweep` calls to save every epoch into ``directory`` and resume."""

    directory: Path
    plan: Plan
    managers: dict[int, Any] = dataclasses.field(default_factory=dict)
    plain: PlainPath | None = None  # the directory as Orbax sees it (any characters: mlpjax.runs.orbax_io)

    def _orbax_root(self, g: int) -> Path:
        """Group ``g``'s CheckpointManager directory, under a name Orbax's globbing cannot misread."""
        if self.plain is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.plain = PlainPath(self.directory)
        return self.plain.path / GROUPS / str(g)

    @classmethod
    def open(cls, output: str | os.PathLike, plan: Plan, *, resume: bool = False) -> SweepCheckpoints:
        """A new sweep folder ``output`` (refused if it holds a sweep) or, with ``resume``, the existing one."""
        directory = Path(output)
        if not resume:
            if directory.exists() and not directory.is_dir():
                raise FieldError("output", f"{{field}} {directory}: exists and is not a directory")
            if (directory / PLAN).exists():
                raise FieldError("output", f"{{field}} {directory}: already holds a sweep; continue it with "
                                 f"{{resume}} {directory} or choose another {{field}}", also=("resume",))
            files.write_json(directory / PLAN, plan.to_dict())
        return cls(directory, plan)

    def _manager(self, g: int):
        if g not in self.managers:
            ocp = _ocp()
            options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, enable_async_checkpointing=False,
                                                   cleanup_tmp_directories=True)
            root = self._orbax_root(g)
            set_aside_incomplete_steps(root)
            self.managers[g] = ocp.CheckpointManager(root, options=options)
        return self.managers[g]

    def group_saver(self, g: int) -> Callable[[int, TrainState, list[History]], None]:
        """``on_epoch_end`` of group ``g``: saves its stacked state and histories as epoch ``epoch``."""
        def save(epoch: int, state: TrainState, histories: list[History]) -> None:
            ocp = _ocp()
            arrays = jax.device_get(stack.stack_arrays(state))
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "epoch": epoch,
                    "configs": [c.to_dict() for c in self._configs(g)],
                    "model_config": dataclasses.asdict(state.model_config),
                    "histories": [{k: list(h[k]) for k in HISTORY_KEYS} for h in histories],
                    "digest": state_digest(arrays)}
            self._manager(g).save(epoch, args=ocp.args.Composite(state=ocp.args.StandardSave(arrays),
                                                                 meta=ocp.args.JsonSave(meta)), force=True)
        return save

    def _configs(self, g: int) -> list[TrainConfig]:
        from mlpjax.sweep.train import groups

        return [self.plan.configs[i] for i in groups(self.plan.configs)[g]]

    def group_start(self, g: int, configs: Sequence[TrainConfig]) -> GroupStart | None:
        """Group ``g``'s latest saved epoch (None: none saved), checked against ``configs``."""
        root = self.directory / GROUPS / str(g)
        steps = complete_steps(root)  # the epochs Orbax finished (a half-made or empty one is passed over)
        if not steps:
            return None
        step = steps[-1]
        ocp, path = _ocp(), root / str(step)
        manager = _reader(self._orbax_root(g))
        try:
            meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
            saved = [TrainConfig.from_dict(c) for c in meta["configs"]]
            model_config = ModelConfig(**{**meta["model_config"], "hidden": tuple(meta["model_config"]["hidden"])})
            histories = [{k: [float(v) for v in h[k]] for k in HISTORY_KEYS} for h in meta["histories"]]
        except Exception as e:  # orbax and bad JSON raise many types
            raise UserInputError(f"{path}: cannot read the group's metadata ({_short(e)})") from None
        if saved != list(configs) or any(len(h["loss"]) != step for h in histories):
            raise UserInputError(f"{path}: the saved group does not match the sweep's plan; the folder is inconsistent")
        abstract = jax.eval_shape(lambda: stack.group_state(configs, model_config))
        try:
            arrays = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(stack.stack_arrays(abstract)))).state
        except Exception as e:
            raise UserInputError(f"{path}: cannot restore the saved arrays ({_short(e)})") from None
        if state_digest(arrays) != meta["digest"]:
            raise UserInputError(f"{path}: the saved arrays do not match their checksum; the checkpoint is corrupted")
        return GroupStart(abstract.replace(**jax.tree_util.tree_map(jnp.asarray, arrays)), histories)

    def fit_for(self, i: int) -> Callable[..., Any]:
        """A ``fit`` for sequential model ``i``: its run directory ``DIR/runs/<i>``, started or resumed."""
        def fit(config: TrainConfig, dataset, *, log=None, on_epoch_end=None):
            folder = self.directory / RUNS / str(i)
            one = run.resume(folder) if (folder / CHECKPOINTS).is_dir() else run.start(folder, config, keep=KEEP)
            if one.config != config:
                raise UserInputError(f"{folder}: holds another model than the sweep's plan")
            return one.fit(dataset, log=log)
        return fit

    def close(self) -> None:
        for manager in self.managers.values():
            manager.close()
        if self.plain is not None:
            self.plain.close()
