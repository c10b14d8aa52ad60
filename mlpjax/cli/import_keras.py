"""``mlpjax import-keras MODEL.keras --output DIR``: a Keras Dense/Dropout MLP as an mlpjax run directory."""

from __future__ import annotations

import argparse

NAME = "import-keras"
HELP = "make a run directory from a Keras Dense/Dropout MLP (model.save's .keras file)"
DESCRIPTION = (
    "Reads a keras.Sequential of Dense and Dropout layers ending in a softmax Dense (the tutorial's "
    "model saved by model.save) and writes its weights as a run directory that evaluate, predict, "
    "draw, summary and export accept. Other layer kinds are refused. Keras loads the file in safe "
    "mode: no code in it runs. See docs/export.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mlpjax.data import DATASETS

    p.add_argument("model", metavar="MODEL.keras", help="a Keras 3 model file")
    p.add_argument("--output", required=True, metavar="DIR", help="the new run directory")
    p.add_argument(
        "--dataset",
        metavar="NAME|FILE",
        help="the dataset its commands test on: "
        + ", ".join(DATASETS)
        + ", or a file FILE.npz, FILE.csv, FILE.tsv, FILE.parquet or a folder of images DIR/ of the model's "
        "input width and classes (default: the first dataset by name with the model's input width and classes)",
    )


def run(args: argparse.Namespace) -> int:
    from mlpjax.core import summary
    from mlpjax.runs import checkpoint, export

    directory = export.import_keras(args.model, args.output, dataset=args.dataset)
    ckpt = checkpoint.restore(directory)
    print(summary.summary(ckpt.model_config))
    print(f"wrote {directory} from {args.model} (dataset {ckpt.config.dataset}); try mlpjax evaluate {directory}")
    return 0
