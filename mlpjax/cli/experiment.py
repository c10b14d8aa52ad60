"""``mlpjax experiment``: measure one of the tutorial's claims."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from mlpjax.cli.flags import flag_error, lines

NAME = "experiment"
HELP = "measure one of the tutorial's claims: tables and figures in DIR/NAME/"
DESCRIPTION = (
    "Run one experiment (or all of them in turn) that measures a claim of the tutorial, and write its "
    "tables, figures and results.json into DIR/NAME/."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mlpjax.experiments import DEFAULT_OUT, discover

    p.formatter_class = argparse.RawDescriptionHelpFormatter  # the list below keeps its lines: wrap the rest
    p.description = textwrap.fill(DESCRIPTION, 80)
    p.epilog = "experiments:\n" + lines([*discover().items(), ("all", "every experiment above, in turn")])
    p.add_argument("name", metavar="NAME", help="an experiment of the list below, or all")
    p.add_argument("--quick", action="store_true", help="smoke-test budget: digits (or an MNIST slice), 2 epochs")
    p.add_argument(
        "--out", default=DEFAULT_OUT, metavar="DIR", help=f"results go to DIR/NAME/ (default: {DEFAULT_OUT})"
    )
    p.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST IDX files (default: $MLPJAX_DATA_DIR)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of every run (default: 0)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier run in DIR/NAME/ (without it, they are kept and the "
        "experiment is refused)",
    )


def run(args: argparse.Namespace) -> int:
    from mlpjax import experiments, files
    from mlpjax.errors import check_name

    found = experiments.discover()
    check_name("experiment", args.name, (*found, "all"))
    names = list(found) if args.name == "all" else [args.name]
    experiments.check_seed(names, args.seed)
    for name in names:  # before any experiment runs: `all` is refused whole, not after hours
        experiments.check_results_folder(Path(args.out) / name, args.overwrite)
    with flag_error("--out"):
        files.make_folder(args.out)
    for name in names:
        experiments.run_experiment(
            name, args.out, quick=args.quick, data_dir=args.data_dir, seed=args.seed, overwrite=args.overwrite
        )
    return 0
