"""``mlpjax bench``: training speed against the matmul ceiling and other frameworks."""

from __future__ import annotations

import argparse
import sys

from mlpjax.cli.flags import positive_int

NAME = "bench"
HELP = "training speed against the matmul ceiling, Flax NNX, PyTorch and Keras"
DESCRIPTION = (
    "Time the training of the tutorial's model against XLA's float32 matmul ceiling, a minimal "
    "hand-written JAX loop, Flax NNX, PyTorch (eager and compiled) and Keras (those installed), then a "
    "batch-size and width sweep, peak memory, and models per second by the sweep's strategies. "
    "Progress goes to stderr."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mlpjax.bench import BenchConfig
    from mlpjax.bench.baselines import RUNNERS

    default = BenchConfig()
    names = "; ".join(f"{name} ({baseline.about})" for name, baseline in RUNNERS.items())
    every = "all of them" if default.against == tuple(RUNNERS) else ",".join(default.against)
    p.add_argument("--quick", action="store_true", help="small budgets (a smoke test)")
    p.add_argument(
        "--startup",
        action="store_true",
        help="only the start-up table instead: cold and warm seconds of fresh train, evaluate, predict, backprop, "
        "--version and --help processes with the compilation cache off, empty and filled (--rounds of each, "
        "interleaved; trains a digits model in a temporary folder first)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--against",
        default=",".join(default.against),
        metavar="NAMES",
        help=f"comma-separated baselines, run when installed: {names}; '' for none (default: {every})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=default.batch_size,
        metavar="N",
        help=f"batch size of the timed epochs (default: {default.batch_size})",
    )
    p.add_argument(
        "--hidden",
        type=positive_int,
        nargs="+",
        default=list(default.hidden),
        metavar="N",
        help=f"hidden layer sizes of the timed model (default: {' '.join(map(str, default.hidden))})",
    )
    p.add_argument(
        "--dataset",
        metavar="NAME|FILE",
        help="the data the model trains on: a dataset by name, a file FILE.npz, FILE.csv, FILE.tsv, FILE.parquet "
        "or a folder of images DIR/ (default: MNIST from --data-dir, else random data of MNIST's shape)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="real MNIST (default: $MLPJAX_DATA_DIR, else random data)")
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=default.rounds,
        metavar="N",
        help=f"timed epochs per framework, interleaved round by round (default: {default.rounds})",
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the batch-size and width sweep")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument(
        "--no-models",
        action="store_true",
        help="skip models per second by K (K models as one vmapped program, and one by one)",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from mlpjax import bench

    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    if args.startup:
        from mlpjax.bench import startup

        _refuse_with_startup(args)
        times = startup.measure(args.rounds, log)
        print(json.dumps(times, indent=2) if args.json else startup.format_tables(times))
        return 0
    config = bench.BenchConfig(
        quick=args.quick,
        against=tuple(a for a in args.against.split(",") if a),
        batch_size=args.batch_size,
        hidden=tuple(args.hidden),
        data_dir=args.data_dir,
        dataset=args.dataset,
        rounds=args.rounds,
        sweep=not args.no_sweep,
        memory=not args.no_memory,
        models=not args.no_models,
    )
    report = bench.run(config, log=log)
    print(json.dumps(report, indent=2) if args.json else bench.format_report(report))
    return 0


def _refuse_with_startup(args: argparse.Namespace) -> None:
    """``--startup`` times fresh processes only: a flag of the training bench beside it would do nothing."""
    from mlpjax.bench import BenchConfig
    from mlpjax.errors import UserInputError

    default = BenchConfig()
    given = {
        "--quick": args.quick,
        "--against": args.against != ",".join(default.against),
        "--batch-size": args.batch_size != default.batch_size,
        "--hidden": tuple(args.hidden) != default.hidden,
        "--dataset": args.dataset is not None,
        "--data-dir": args.data_dir is not None,
        "--no-sweep": args.no_sweep,
        "--no-memory": args.no_memory,
        "--no-models": args.no_models,
    }
    for flag, used in given.items():
        if used:
            raise UserInputError(
                f"{flag}: does nothing with --startup, which times fresh processes only (--rounds, --json)"
            )
