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
    p.add_argument(
        "--dataset",
        metavar="NAME|FILE|DIR",
        help="train on this data instead of MNIST, whole (quick or not): a name, a CSV/TSV/Parquet/npz file, a "
        "folder of images or tfds:NAME, as train's --dataset (docs/data.md); quadrants and tabular keep their "
        "own data (with all, they are left out)",
    )
    p.add_argument("--test-split", type=float, metavar="F", help="with --dataset: as train's --test-split")
    p.add_argument("--image-size", metavar="HxW", help="with --dataset: as train's --image-size")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of every run (default: 0)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of an earlier run in DIR/NAME/ (without it, they are kept and the "
        "experiment is refused)",
    )


def run(args: argparse.Namespace) -> int:
    from mlpjax import experiments, files
    from mlpjax.errors import UserInputError, check_name
    from mlpjax.experiments import common

    found = experiments.discover()
    check_name("experiment", args.name, (*found, "all"))
    names = list(found) if args.name == "all" else [args.name]
    if args.dataset is None and (args.test_split is not None or args.image_size is not None):
        raise UserInputError(
            f"{'--test-split' if args.test_split is not None else '--image-size'}: applies with --dataset only"
        )
    if args.dataset is not None and args.name == "all":
        left_out = [n for n in names if experiments.own_data(n)]
        names = [n for n in names if n not in left_out]
        print(f"{', '.join(left_out)}: trained on their own data, left out with --dataset")
    source = common.DataChoice(args.dataset, args.data_dir, args.test_split, args.image_size)
    experiments.check_seed(names, args.seed)
    for name in names:
        experiments.check_source(name, source)
    for name in names:  # before any experiment runs: `all` is refused whole, not after hours
        experiments.check_results_folder(Path(args.out) / name, args.overwrite)
    with flag_error("--out"):
        files.make_folder(args.out)
    for name in names:
        experiments.run_experiment(
            name, args.out, quick=args.quick, source=source, seed=args.seed, overwrite=args.overwrite
        )
    return 0
