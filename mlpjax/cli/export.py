"""``mlpjax export DIR --format onnx|keras|npz --out FILE``: a saved model in a format other tools read."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "write a saved model as ONNX, a Keras .keras file or NumPy arrays, for use outside mlpjax"
DESCRIPTION = (
    "Writes the model of a run directory to a new file that computes the same class probabilities "
    "(float32, any batch size) without mlpjax: ONNX for onnxruntime, a Keras 3 Sequential of the same "
    "Dense/Dropout layers, or plain NumPy arrays with the architecture as JSON. See docs/export.md."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mlpjax.runs.export import FORMATS

    p.add_argument("directory", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")
    p.add_argument(
        "--format",
        required=True,
        choices=list(FORMATS),
        metavar="FORMAT",
        help="; ".join(f"{name}: {about}" for name, (_, about) in FORMATS.items()),
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the new file (never replaces one)")


def run(args: argparse.Namespace) -> int:
    from mlpjax.cli.flags import flag_error
    from mlpjax.runs import checkpoint, export

    ckpt = checkpoint.restore(args.directory, best=args.best)
    export.refuse_registered(ckpt.classifier)  # the model's, not --out's fault
    with flag_error("--out"):
        out = export.export(ckpt.classifier, args.format, args.out)
    m = ckpt.model_config
    extra = f", opset {export.ONNX_OPSET}" if args.format == "onnx" else ""
    print(
        f"wrote {out} ({args.format}{extra}): epoch {ckpt.epoch} of {args.directory}, probabilities "
        f"(batch, {m.num_classes}) for x (batch, {m.input_dim}) float32"
    )
    return 0
