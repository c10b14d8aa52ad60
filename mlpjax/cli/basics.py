"""``mlpjax basics``: the tutorial's small worked examples."""

from __future__ import annotations

import argparse

NAME = "basics"
HELP = "the tutorial's small worked examples: activations, softmax, ..., the δ method"
DESCRIPTION = (
    "Print the tutorial's small worked examples: activations, softmax, cross-entropy, the collapse of "
    "linear layers, dropout, to_categorical, steps per epoch, MNIST's raw shapes and the δ method."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="MNIST IDX files, to read the shapes from their headers (default: $MLPJAX_DATA_DIR)",
    )
    p.add_argument("--json", action="store_true", help="print every number as one JSON object")


def run(args: argparse.Namespace) -> int:
    import json

    from mlpjax.teaching import basics

    record = basics.compute(args.data_dir)
    print(json.dumps(record, indent=2) if args.json else basics.render(record))
    return 0
