"""``mlpjax summary``: Keras' ``model.summary()`` table of an architecture or of a saved run."""

from __future__ import annotations

import argparse

from mlpjax.cli.flags import add_config_flags, flag, train_config_from_args
from mlpjax.errors import UserInputError

NAME = "summary"
HELP = "the model's layers, output shapes and parameters, as Keras' model.summary()"
DESCRIPTION = (
    "Print Keras' model.summary() table (layer, output shape, parameters) for the architecture that "
    "the flags choose, or for the model of a saved run: mlpjax summary DIR (with the input scaling it was "
    "trained with, if any: --normalize)."
)


def architecture() -> tuple[str, ...]:
    """The TrainConfig fields that shape the model: the dataset (a table's label column, the images' size) and the
    model's chosen fields."""
    from mlpjax.core.config import MODEL_FIELDS

    return ("dataset", "label_column", "image_size", *MODEL_FIELDS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", nargs="?", metavar="DIR", help="a run directory (else the architecture flags)")
    add_config_flags(p, architecture())


def run(args: argparse.Namespace) -> int:
    from mlpjax.core import summary

    if args.directory:
        given = {k for k in architecture() if getattr(args, k, None) is not None}
        if given:
            raise UserInputError(
                f"give a run DIR ({args.directory}) or architecture flags "
                f"({', '.join(flag(k) for k in sorted(given))}), not both"
            )
        from mlpjax.runs import checkpoint

        ckpt = checkpoint.restore(args.directory)
        model_config, scaler = ckpt.model_config, ckpt.scaler
    else:
        model_config, scaler = summary.model_config_for(train_config_from_args(args)), None
    print(summary.summary(model_config))
    if scaler is not None:
        print(
            f" Input scaling: --normalize {scaler.kind}, (x - shift) / scale of the {scaler.width} features, fitted "
            "on the training rows and saved with the model (not trained; Keras: a Normalization layer first)"
        )
    return 0
