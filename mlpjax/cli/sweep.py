"""``mlpjax sweep``: train the product of lists of training settings."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from mlpjax.cli.flags import (
    add_config_flags,
    flag,
    integer,
    positive_int,
    progress_bars,
    refuse_idle_plateau,
    refuse_output_beside_resume,
)
from mlpjax.errors import UserInputError

NAME = "sweep"
HELP = "train every combination of lists of settings: one model after another, or as vmapped groups"
DESCRIPTION = (
    "Train every combination of comma-separated lists of the training flags (--seed 0,1,2 --lr "
    "0.001,0.0003: six models) and report mean ± std over the seeds of each setting. Models that "
    "differ only in seed, lr and dropout form a group; --strategy sequential trains the models one "
    "after another (the program of mlpjax train; auto picks it on a CPU), vmap trains each group as "
    "one vmapped program (auto picks it on a GPU or TPU)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mlpjax.sweep.train import STRATEGIES

    add_config_flags(p, listed_=True)
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="sequential: one model after another, each as mlpjax train trains it; vmap: each group as "
        "one vmapped program; auto: vmap on an accelerator, sequential on a CPU (measured: "
        "docs/sweep.md) (default: auto; with --resume, the saved sweep's)",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        help="results.json, summary.md, curves.png, TensorBoard's HParams data (DIR/tensorboard) and a "
        "checkpoint of every group after each epoch (or every --save-every N) in DIR",
    )
    p.add_argument(
        "--save-every",
        type=integer,
        metavar="N",
        help="with --output or --resume: save each group's (each model's, one after another) checkpoint every N "
        "epochs, and the first and the last; a resumed sweep trains the epochs after the last one saved again, "
        "to the same numbers (default: 1; with --resume, the saved sweep's)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --output: replace an earlier sweep in DIR (never files mlpjax did not write); without it "
        "such a DIR is refused",
    )
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR from its last saved epochs")
    p.add_argument(
        "--devices",
        type=positive_int,
        metavar="N",
        help="with vmap: split the model axis over N devices (default: one device)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar or per-epoch lines (the bar is drawn only when stderr is a terminal)",
    )


def _sweep_bar(plan, found: list[list[int]]):
    """One progress bar for the whole sweep, a step per epoch line: a group's epoch when vmapped, a model's when
    one after another; the lines are written above it."""
    from tqdm.auto import tqdm

    configs = plan.configs
    total = sum(configs[g[0]].epochs for g in found) if plan.strategy == "vmap" else sum(c.epochs for c in configs)
    return tqdm(total=total, desc="sweep", unit="epoch", leave=False)


def run(args: argparse.Namespace) -> int:
    from mlpjax import data, sweep
    from mlpjax.sweep import checkpoint as sweep_checkpoint
    from mlpjax.sweep import report as sweep_report

    if args.overwrite and (args.resume or not args.output):
        raise UserInputError(
            "--overwrite starts --output DIR afresh, replacing an earlier sweep there"
            + ("; --resume continues one: give one of them" if args.resume else ": give --output DIR")
        )
    if args.resume:
        refuse_output_beside_resume(args)
        plan = sweep_checkpoint.load_plan(args.resume)
        given = [n for n in sweep.LISTED + sweep.ONE_PER_SWEEP if getattr(args, n, None) is not None]
        if given:
            raise UserInputError(f"--resume continues the saved sweep; drop {', '.join(flag(n) for n in given)}")
        # a vmapped sweep saves stacked groups (groups/<g>), a sequential one run folders (runs/<i>): neither
        # strategy can continue the other's epochs, so another one is refused rather than silently ignored
        if args.strategy is not None and sweep.resolve_strategy(args.strategy) != plan.strategy:
            raise UserInputError(
                f"--strategy {args.strategy}: the sweep in {args.resume} was saved with strategy "
                f"{plan.strategy}, whose checkpoints the other strategy cannot continue; drop "
                "--strategy, or start a new sweep with another --output"
            )
        if args.save_every is not None:  # which epochs are saved from now on: the numbers do not depend on it
            plan = dataclasses.replace(plan, save_every=args.save_every)
        output = args.resume
    else:
        base = {k: getattr(args, k) for k in sweep.ONE_PER_SWEEP if getattr(args, k) is not None}
        lists = {k: getattr(args, k) for k in sweep.LISTED if getattr(args, k) is not None}
        refuse_idle_plateau(lists, True in lists.get("reduce_lr_on_plateau", ()))
        if args.save_every is not None and not args.output:
            raise UserInputError("--save-every needs --output DIR (or --resume DIR)")
        plan = sweep_checkpoint.Plan(
            sweep.grid(base, lists),
            sweep.resolve_strategy(args.strategy or "auto"),
            1 if args.save_every is None else args.save_every,
        )
        data.check_data_dir(plan.configs[0].dataset, args.data_dir)  # one dataset for every model
        output = args.output
    mesh = None
    if args.devices is not None and plan.strategy != "vmap":
        raise UserInputError(
            f"--devices splits the models of a vmapped group; this sweep's strategy is "
            f"{plan.strategy} (give --strategy vmap)"
        )
    if args.devices is not None:
        from mlpjax.sweep import stack

        mesh = stack.model_mesh(args.devices)
    dataset = plan.configs[0].load_dataset()
    if args.resume:  # the files the sweep was trained on unchanged
        data.check_unchanged(dataset.name, plan.dataset_digest, dataset.digest, f"the sweep in {args.resume}")
    else:
        plan = dataclasses.replace(plan, dataset_digest=dataset.digest)
    sweep.check_sweep_memory(plan.configs, dataset, plan.strategy, mesh)  # before the folder is made
    hooks = (
        sweep_checkpoint.SweepCheckpoints.open(output, plan, resume=bool(args.resume), overwrite=args.overwrite)
        if output
        else None
    )
    found = sweep.groups(plan.configs)
    print(
        f"{len(plan.configs)} models in {len(found)} group(s), strategy {plan.strategy}"
        + (f", model axis over {mesh.size} devices" if mesh is not None else "")
        + (f"; {dataset.dropped_note()} (--nan drop)" if dataset.dropped_rows else "")
    )
    bar = _sweep_bar(plan, found) if progress_bars(args) else None
    log: Callable[[str], None] | None = None if args.quiet else print
    if bar is not None and log is not None:

        def log_to_bar(line: str) -> None:  # the line above the bar, a step of the bar
            bar.write(line)
            bar.update(1)

        log = log_to_bar
    try:
        result = sweep.run_sweep(plan.configs, dataset, strategy=plan.strategy, mesh=mesh, hooks=hooks, log=log)
    finally:
        if bar is not None:
            bar.close()
        if hooks:
            hooks.close()
    print(sweep_report.summary_markdown(result), end="")
    if output:
        paths = sweep_report.write(output, result)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
