"""Memory before it is allocated: what a run or a checkpoint will need, against what the machine has.

Contract: :func:`check_training` and :func:`check_restore` raise a :class:`~mlpjax.errors.FieldError` naming
the setting to lower when the estimate exceeds the memory available (``MemAvailable`` of ``/proc/meminfo``,
within a cgroup's limit and an address-space limit: :func:`mlpjax.memory.available_memory`). Estimates
are shapes times bytes, made without allocating anything, and err on the generous side of what XLA needs:
only what cannot fit is refused. :func:`effective_batch_size` caps a batch at the training set (as Keras does).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import numpy as np

from mlpjax import memory
from mlpjax.errors import FieldError
from mlpjax.memory import format_bytes

# Live copies of a float per example and unit while a step runs: pre-activation, activation, dropout mask and
# their gradients (a generous bound: XLA fuses most of them).
ACTIVATION_COPIES = 6
# Beyond the state itself, a step holds the gradients, the updates and the new params: copies of the params.
STEP_PARAM_COPIES = 3
EVAL_BATCH = 1000


def tree_bytes(tree: Any) -> int:
    """Bytes of the arrays (or shape-dtype structs) of ``tree``."""
    return sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree_util.tree_leaves(tree))


def effective_batch_size(batch_size: int, train_examples: int) -> int:
    """The batch a run uses: ``batch_size``, at most the training set (one full-batch step per epoch)."""
    return max(1, min(batch_size, train_examples))


def training_bytes(config, model_config, dataset, batch_size: int | None = None) -> dict[str, int]:
    """The estimate of :func:`check_training`, in parts: ``state`` (params and optimizer state), ``step``
    (gradients, updates), ``activations`` (of a training batch of ``batch_size``, by default the config's,
    and an evaluation batch) and ``data`` (the rows placed on the device and the epoch's batch indices; with
    ``config.normalize``, the scaled float32 copy of the rows too, on the host and on the device)."""
    from mlpjax.core.state import abstract_state

    state = abstract_state(config, model_config)
    params = tree_bytes(state.params)
    n_train, n_test = len(dataset.y_train), len(dataset.y_test)
    batch = effective_batch_size(config.batch_size if batch_size is None else batch_size, n_train)
    per_example = model_config.activation_units() * 4 * ACTIVATION_COPIES
    rows = sum(np.asarray(a).nbytes for a in (dataset.encoded_train, dataset.encoded_test)) + 4 * (n_train + n_test)
    if config.normalize != "none":  # scaled float32 rows, on the host and on the device
        rows += 2 * 4 * (n_train + n_test) * dataset.input_dim
    return {
        "state": tree_bytes(state),
        "step": STEP_PARAM_COPIES * params,
        "activations": per_example * (batch + min(EVAL_BATCH, max(n_test, 1))),
        "data": rows + 8 * math.ceil(n_train / batch) * batch,
    }


def group_bytes(parts: dict[str, int], models: int) -> int:
    """Bytes of ``models`` models trained as one program on the same rows: their states, steps and activations
    side by side, the data once."""
    return models * (parts["state"] + parts["step"] + parts["activations"]) + parts["data"]


def check_training(config, model_config, dataset, models: int = 1) -> None:
    """Refuse ``config`` on ``dataset`` if its estimated memory (:func:`training_bytes`) cannot fit, for
    ``models`` such models trained as one vmapped program (:func:`group_bytes`).

    The error names ``hidden`` when even one model with a batch of one cannot fit, ``batch_size`` when one model
    cannot, else ``strategy`` (the models fit one at a time, not together).
    """
    parts = training_bytes(config, model_config, dataset)
    total, one, free = group_bytes(parts, models), sum(parts.values()), memory.free_memory()
    if total <= free:
        return
    if one <= free:
        raise FieldError(
            "strategy",
            f"{{field}} vmap: its {models} models of hidden "
            f"{' '.join(map(str, model_config.hidden))} trained together would need about "
            f"{format_bytes(total)} of memory ({format_bytes(one)} for one) but {format_bytes(free)} "
            "is available; train fewer models at once or choose {field} sequential",
        )
    if sum(training_bytes(config, model_config, dataset, batch_size=1).values()) > free:
        field, value = "hidden", " ".join(map(str, model_config.hidden))
    else:
        used = effective_batch_size(config.batch_size, len(dataset.y_train))
        capped = f" (capped at the {used} training examples)" if used < config.batch_size else ""
        field, value = "batch_size", f"{config.batch_size}{capped}"
    raise FieldError(
        field,
        f"{{field}} {value}: training would need about {format_bytes(one)} of memory (params and "
        f"optimizer state {format_bytes(parts['state'])}, gradients {format_bytes(parts['step'])}, "
        f"activations {format_bytes(parts['activations'])}, data {format_bytes(parts['data'])}) but "
        f"{format_bytes(free)} is available; choose a smaller {{field}}",
    )


def check_restore(path: Path, declared: int, on_disk: int, *, ratio: int = 64, floor: int = 16 * 2**20) -> None:
    """Refuse to restore a checkpoint at ``path`` whose config declares ``declared`` bytes of arrays when its
    files hold ``on_disk`` bytes: more than ``ratio`` times as much (and above ``floor``) cannot be trained
    weights, which hardly compress; or more than the memory available."""
    from mlpjax.errors import UserInputError

    if declared > floor and declared > ratio * on_disk:
        raise UserInputError(
            f"{path}: its config declares {format_bytes(declared)} of arrays but its files hold only "
            f"{format_bytes(on_disk)}; the checkpoint is inconsistent (crafted or corrupted)"
        )
    free = memory.available_memory()
    if declared > free:
        raise UserInputError(
            f"{path}: restoring it needs {format_bytes(declared)} of memory but {format_bytes(free)} is available"
        )
