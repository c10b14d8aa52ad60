"""``mlpjax predict``: a saved model's prediction for a test sample or an image file."""

from __future__ import annotations

import argparse

from mlpjax.cli.flags import add_saved_model_flags, flag_error
from mlpjax.errors import UserInputError

NAME = "predict"
HELP = "predict a test sample (--index) or a digit image file (--image)"
DESCRIPTION = (
    "Predict one test sample of a saved model's dataset (--index N, also drawn to a PNG titled with the "
    "predicted and true labels) or a digit in an image file of any size (--image FILE; with --out, the "
    "digit as the model sees it is drawn too)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_model_flags(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=int, metavar="N", help="test sample N; draws it to a PNG (see --out)")
    what.add_argument("--image", metavar="FILE", help="an image of a digit, any size, either polarity")
    p.add_argument(
        "--out",
        metavar="FILE.png",
        help="where to draw the input: with --index the test sample "
        "(default: predict_N.png); with --image the digit as the model sees it (only when given)",
    )


def run(args: argparse.Namespace) -> int:
    from mlpjax import files
    from mlpjax.draw import predict
    from mlpjax.runs import checkpoint
    from mlpjax.runs import run as runs

    ckpt = checkpoint.restore(args.directory, best=args.best)
    if args.image is not None:
        if args.out is not None:
            with flag_error("--out"):
                files.check_new_file(args.out)  # before predicting; save_png checks again as it writes
        with flag_error("--image"):
            x = predict.load_image(args.image, ckpt.model_config.input_dim)
        result = predict.predict_one(ckpt.classifier, x)
        print(f"{args.image}: {result.describe()}")
        if args.out is not None:
            side = predict.input_side(ckpt.model_config.input_dim)
            with flag_error("--out"):
                print(f"wrote {predict.save_png(x.reshape(side, side), result.describe(), args.out)}")
        return 0
    ds = runs.dataset_for(ckpt, args.dataset, args.data_dir)
    if not 0 <= args.index < len(ds.y_test):
        raise UserInputError(f"--index {args.index}: the {ds.name} test set has samples 0 to {len(ds.y_test) - 1}")
    out = f"predict_{args.index}.png" if args.out is None else args.out
    if ds.image_shape is not None:
        with flag_error("--out"):
            files.check_new_file(out)  # before predicting; save_png checks again as it writes
    image, label = ds.test_example(args.index)
    result = predict.predict_one(ckpt.classifier, image, label)
    print(f"{ds.name} test sample {args.index}: {result.describe(names=ds.class_names)}")
    if ds.image_shape is not None:
        with flag_error("--out"):
            out = predict.save_png(image.reshape(ds.image_shape), result.describe(sep="\n", names=ds.class_names), out)
        print(f"wrote {out}")
    return 0
