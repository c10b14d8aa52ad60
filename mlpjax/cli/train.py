"""``mlpjax train``: train the MLP, optionally into a run directory, and report the test figures."""

from __future__ import annotations

import argparse

from mlpjax.cli.flags import (
    add_config_flags,
    flag,
    given_train_flags,
    integer,
    refuse_idle_plateau,
    refuse_output_beside_resume,
    train_config_from_args,
)
from mlpjax.errors import UserInputError

NAME = "train"
HELP = "train the MLP and report test accuracy"
DESCRIPTION = (
    "Train the MLP (by default the tutorial's: MNIST, 784-512-10, relu, dropout 0.2, Adam, batch 128) "
    "and report the test loss, the test accuracy and the prediction for test sample 9. With --output "
    "DIR, the epochs are saved into DIR (every one, or every --save-every N) and --resume DIR continues it."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_flags(p)
    p.add_argument(
        "--output",
        metavar="DIR",
        help="save a checkpoint every epoch (or --save-every N) into DIR/checkpoints, and after every epoch the "
        "history into DIR/metrics.json and DIR/history.csv, TensorBoard logs into DIR/tensorboard/ and the "
        "learning curves into DIR/learning_curves.png",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --output: replace an earlier run in DIR (never one in progress, never files mlpjax did not "
        "write); without it such a DIR is refused",
    )
    p.add_argument("--keep", type=integer, metavar="N", help="checkpoints to keep, the most recent (default: 3)")
    p.add_argument(
        "--save-every",
        type=integer,
        metavar="N",
        help="save a checkpoint every N epochs, and the first and the last (early stopping's, or the one before "
        "a divergence); a resumed run trains the epochs after its last checkpoint again, to the same numbers "
        "(default: 1; with --resume, the saved run's)",
    )
    p.add_argument(
        "--save-best",
        action="store_true",
        help="also keep the epoch of lowest val_loss in DIR/best, saved when it is reached whatever --save-every",
    )
    p.add_argument(
        "--resume",
        metavar="DIR",
        help="continue DIR from its last complete epoch up to --epochs in all, with its saved settings",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or per-epoch lines (bars are drawn only when stderr is a terminal)",
    )
    p.add_argument(
        "--devices",
        type=integer,
        metavar="N",
        help="data-parallel over N devices of each process (default: all of the default backend)",
    )
    p.add_argument(
        "--model-parallel",
        type=integer,
        default=1,
        metavar="M",
        help="tensor-parallel: split each hidden layer's weights over M of those devices (M must divide "
        "--devices and every --hidden width; default: 1)",
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="several processes (jax.distributed): the address of process 0; 'auto' under "
        "Slurm/Open MPI (default: $JAX_COORDINATOR_ADDRESS)",
    )
    p.add_argument("--num-processes", type=integer, metavar="P", help="with --coordinator: processes in all")
    p.add_argument("--process-id", type=integer, metavar="I", help="with --coordinator: this process, 0 to P-1")


def checkpoint_run(args: argparse.Namespace):
    """The checkpointed run that ``train --output/--resume`` asks for, checked before anything is written."""
    from mlpjax.runs import run

    if not args.resume:
        return run.start(
            args.output,
            train_config_from_args(args),
            keep=args.keep,
            save_best=args.save_best,
            save_every=1 if args.save_every is None else args.save_every,
            overwrite=args.overwrite,
        )
    refuse_output_beside_resume(args)
    # flags left out come from the checkpoint; those given must agree with it (or be resumable changes)
    resumed = run.resume(
        args.resume, given_train_flags(args), keep=args.keep, save_best=args.save_best, save_every=args.save_every
    )
    try:
        refuse_idle_plateau(given_train_flags(args), resumed.config.reduce_lr_on_plateau)
    except UserInputError:
        resumed.close()
        raise
    return resumed


def run(args: argparse.Namespace) -> int:
    from mlpjax.training import distributed

    saving = [name for name in ("keep", "save_every", "save_best") if getattr(args, name) not in (None, False)]
    if not (args.output or args.resume) and saving:
        raise UserInputError(
            f"{' and '.join(flag(name) for name in saving)} need{'s' if len(saving) == 1 else ''} "
            "--output DIR (or --resume DIR)"
        )
    if args.overwrite and (args.resume or not args.output):
        raise UserInputError(
            "--overwrite starts --output DIR afresh, replacing an earlier run there"
            + ("; --resume continues one: give one of them" if args.resume else ": give --output DIR")
        )
    if not args.resume:  # a resumed run's plateau is the saved one: checked once it is read
        from mlpjax import data

        config = train_config_from_args(args)
        refuse_idle_plateau(given_train_flags(args), config.reduce_lr_on_plateau)
        data.check_data_dir(config.dataset, config.data_dir)  # --data-dir for a dataset that reads no folder
    cluster = distributed.Cluster(args.coordinator, args.num_processes, args.process_id)
    mesh = distributed.setup(args.devices, cluster, args.model_parallel)
    say = print if distributed.is_primary() else (lambda *a, **k: None)  # only process 0 speaks
    saved = checkpoint_run(args) if args.output or args.resume else None
    try:
        return train_and_report(args, saved, mesh, say)
    finally:
        if saved:
            saved.close()  # a run that saved no epoch (refused or failed) leaves nothing it created


def train_and_report(args: argparse.Namespace, run, mesh, say) -> int:
    """``mlpjax train`` once its run directory, if any, is claimed (``run``): load, train, report."""
    from mlpjax.core import summary
    from mlpjax.data import split
    from mlpjax.draw import predict
    from mlpjax.training import mesh as mesh_lib
    from mlpjax.training import train

    config = run.config if run else train_config_from_args(args)
    dataset = config.load_dataset()
    if run:
        run.check_data(dataset)  # a resumed run's files unchanged, before anything is said
    mesh_lib.check_widths(mesh, config.model_config(dataset.input_dim, dataset.num_classes).split_widths())
    log = None if args.quiet else say
    say(
        f"{dataset.name}: {len(dataset.y_train)} train, {len(dataset.y_test)} test, "
        f"{dataset.input_dim} features, {dataset.num_classes} classes; {config.epochs} epochs"
        + (f"; {dataset.dropped_note()} (--nan drop)" if dataset.dropped_rows else "")
        + (f"; {mesh_lib.describe(mesh)}" if mesh is not None else "")
    )
    if config.validation == "test":
        say(f"note: {split.TEST_NOTE}")
    else:
        n_val = len(dataset.y_train) - len(split.split(dataset, config.validation_split)[0].y_train)
        say(
            f"validation: the last {n_val} training examples (--validation-split {config.validation_split:g}); "
            "the test set is evaluated once, at the end"
        )
    if config.normalize != "none":
        n_fit = len(split.split(dataset, config.validation_split)[0].y_train)
        say(
            f"scaling: --normalize {config.normalize}, fitted on the {n_fit} examples trained on (never on "
            "validation or test examples) and saved with the model"
        )
    if not args.quiet:
        say(summary.summary(config.model_config(dataset.input_dim, dataset.num_classes)))
    if run and run.checkpoint:
        say(f"resuming {run.directory} from epoch {run.checkpoint.epoch}")
    if run:
        result = run.fit(dataset, log=log, mesh=mesh)
    else:
        result = train.fit(config, dataset, log=log, mesh=mesh)
    say(f"test loss {result.test_metrics['loss']:.4f}, test accuracy {result.test_metrics['accuracy']:.4f}")
    if len(dataset.y_test) > 9:
        sample = predict.predict_one(result.classifier, *dataset.test_example(9))  # raw features, scaled inside
        say(f"test sample 9: {sample.describe(names=dataset.class_names)}")
    if run:
        say(
            f"checkpoints in {run.directory / 'checkpoints'}"
            + (f", best in {run.directory / 'best'}" if run.save_best or config.early_stopping is not None else "")
            + f"; wrote {run.directory / 'metrics.json'}, history.csv, tensorboard/ and learning_curves.png"
        )
    if result.kept_epoch is not None and result.kept_epoch != len(result.history["loss"]):
        say(
            f"kept the weights of epoch {result.kept_epoch} (the best val_loss)"
            + (f"; they are in {run.directory / 'best'} (commands take --best)" if run else "")
        )
    return 0
