"""Many models as one program: the grid and its groups, the strategies and the training of each group
(:mod:`.train`), states stacked on a model axis (:mod:`.stack`), a sweep folder's plan and checkpoints
(:mod:`.checkpoint`) and what it leaves (:mod:`.report`). The names below are the wing's public API."""

from mlpjax.sweep.train import (
    LISTED,
    ONE_PER_SWEEP,
    STRATEGIES,
    VARYING,
    GroupRun,
    GroupStart,
    ModelRun,
    SweepResult,
    auto_strategy,
    check_sweep_memory,
    grid,
    group_key,
    groups,
    resolve_strategy,
    run_sweep,
    train_group_vmap,
    train_sequential,
)

__all__ = [
    "LISTED",
    "ONE_PER_SWEEP",
    "STRATEGIES",
    "VARYING",
    "GroupRun",
    "GroupStart",
    "ModelRun",
    "SweepResult",
    "auto_strategy",
    "check_sweep_memory",
    "grid",
    "group_key",
    "groups",
    "resolve_strategy",
    "run_sweep",
    "train_group_vmap",
    "train_sequential",
]
