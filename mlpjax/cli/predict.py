"""``mlpjax predict``: a saved model's predictions for a test sample, image files or rows of a table."""

from __future__ import annotations

import argparse
import functools
import sys

from mlpjax.cli.flags import add_saved_model_flags, flag_error, positive_int
from mlpjax.errors import UserInputError

NAME = "predict"
HELP = "predict a test sample (--index), digit image files (--image) or the rows of a table (--csv)"
DESCRIPTION = (
    "Predict one test sample of a saved model's dataset (--index N, also drawn to a PNG titled with the "
    "predicted and true labels), digits in image files of any size (--image FILE ...; with --out FILE.png and "
    "one image, the digit as the model sees it is drawn too), or the rows of a CSV file for a model trained "
    "on a table (--csv ROWS.csv). --top K shows the K most probable classes, --json prints one JSON "
    "document, and --out FILE.csv writes the predictions of images or rows as a table."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_model_flags(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=int, metavar="N", help="test sample N; draws it to a PNG (see --out)")
    what.add_argument(
        "--image",
        nargs="+",
        metavar="FILE",
        help="image files, any size; several at once. For an mnist or digits model, digits of either polarity "
        "prepared as MNIST was; for an image folder's model, read as its images were",
    )
    what.add_argument(
        "--csv",
        metavar="ROWS.csv",
        help="rows to predict, for a model trained on a table: a header naming its feature columns (in any "
        "order; the training label column, if there, is left out), then one row per example",
    )
    p.add_argument(
        "--top",
        type=positive_int,
        metavar="K",
        help="show the K most probable classes, K from 1 to the model's classes (default: 1)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document: for each input its predicted class, class name and every class's probability",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="with --csv, or --image and a name ending in .csv: a new CSV file of the predictions (a row per "
        "input: its row or image, class, class_name, p(NAME) for each class); with --index, the PNG the test "
        "sample is drawn to (default: predict_N.png); with one --image and another name, a PNG of the digit as "
        "the model sees it. Never replaces a file",
    )


def run(args: argparse.Namespace) -> int:
    from mlpjax.runs import checkpoint

    ckpt = checkpoint.restore(args.directory, best=args.best)
    classes = ckpt.model_config.num_classes
    if args.top is not None and args.top > classes:
        raise UserInputError(f"--top {args.top}: the model has {classes} classes; give K from 1 to {classes}")
    if args.index is not None:
        return _index(args, ckpt)
    table = args.out is not None and (args.csv is not None or args.out.lower().endswith(".csv"))
    if args.image is not None and args.out is not None and not table and len(args.image) > 1:
        raise UserInputError(
            f"--out {args.out}: {len(args.image)} images are predicted; --out FILE.csv writes their predictions "
            "(a drawing of what the model sees takes one --image)"
        )
    if table and args.top is not None and not args.json:
        raise UserInputError(
            f"--top {args.top} chooses what is printed, and with --out {args.out} the predictions go to the "
            "file, every class's probability in it: drop --top, or add --json"
        )
    if args.out is not None:
        from mlpjax import files

        with flag_error("--out"):
            files.check_new_file(args.out)  # before predicting; written below, never replacing a file
    return _images(args, ckpt, table) if args.image is not None else _rows(args, ckpt)


def _images(args: argparse.Namespace, ckpt, table: bool) -> int:
    import numpy as np

    from mlpjax.draw import predict
    from mlpjax.runs import predictions

    about = predictions.trained_on(ckpt, args.dataset, args.data_dir)
    if about.image_shape is None:
        raise UserInputError(
            f"--image: {args.directory} was trained on {about.dataset}, rows of {ckpt.model_config.input_dim} "
            "features, not images; predict its rows with --csv ROWS.csv"
        )
    x = np.empty((len(args.image), ckpt.model_config.input_dim), np.float32)
    for i, image in enumerate(args.image):
        with flag_error("--image"):
            if about.drawn_digits:
                x[i] = predict.load_image(image, ckpt.model_config.input_dim)
            else:  # an image folder's (or tfds set's) model: read as its images were
                x[i] = predict.load_image_as_read(image, about.image_shape)
    probs = ckpt.classifier.predict_proba(x)
    inputs = [{"input": image} for image in args.image]
    write = None
    if table:
        write = functools.partial(predictions.write_table, args.out, "image", args.image, probs, about.class_names)
    elif args.out is not None:  # one image: draw it as the model sees it
        title = predict.prediction(probs[0]).describe(names=about.class_names)
        write = functools.partial(predict.save_png, x[0].reshape(about.image_shape), title, args.out)
    _report(args, ckpt, about, inputs, probs, write, table=table)
    return 0


def _rows(args: argparse.Namespace, ckpt) -> int:
    from mlpjax.data import tables
    from mlpjax.runs import predictions

    about = predictions.trained_on(ckpt, args.dataset, args.data_dir)
    if about.image_shape is not None:
        h, w = about.image_shape
        raise UserInputError(
            f"--csv {args.csv}: {args.directory} was trained on images ({about.dataset}, {h}x{w}); predict image files "
            "with --image FILE ..."
        )
    with flag_error("--csv"):
        x = tables.read_rows(
            args.csv, about.feature_names, width=ckpt.model_config.input_dim, ignore=about.label_column
        )
    probs = ckpt.classifier.predict_proba(x)
    rows = range(1, len(x) + 1)
    inputs = [{"input": f"{args.csv} row {r}", "row": r} for r in rows]
    write = None
    if args.out is not None:
        write = functools.partial(predictions.write_table, args.out, "row", rows, probs, about.class_names)
    _report(args, ckpt, about, inputs, probs, write, table=write is not None)
    return 0


def _report(args, ckpt, about, inputs: list[dict], probs, write, *, table: bool) -> None:
    """Print the predictions of ``inputs``: one line each, or with --json one document; then ``write()`` the file
    of --out (None: none) and say "wrote FILE" (on stderr under --json, whose stdout is the document alone).
    ``table``: that file is the predictions' table, in place of the lines."""
    import json

    from mlpjax.draw import predict
    from mlpjax.runs import predictions

    top = args.top or 1
    if args.json:
        print(json.dumps(_document(ckpt, about, predictions.records(inputs, probs, about.class_names, top)), indent=2))
    elif not table:
        for given, p in zip(inputs, probs, strict=True):
            print(f"{given['input']}: {predict.prediction(p).describe(names=about.class_names, top=top)}")
    if write is not None:
        with flag_error("--out"):
            path = write()
        print(f"wrote {path}", file=sys.stderr if args.json else sys.stdout)


def _document(ckpt, about, records: list[dict]) -> dict:
    return {
        "checkpoint": str(ckpt.path),
        "epoch": ckpt.epoch,
        "dataset": about.dataset,
        "classes": list(about.class_names),
        "predictions": records,
    }


def _index(args: argparse.Namespace, ckpt) -> int:
    import json

    from mlpjax import files
    from mlpjax.draw import predict
    from mlpjax.runs import predictions
    from mlpjax.runs import run as runs

    ds = runs.dataset_for(ckpt, args.dataset, args.data_dir)
    if not 0 <= args.index < len(ds.y_test):
        raise UserInputError(f"--index {args.index}: the {ds.name} test set has samples 0 to {len(ds.y_test) - 1}")
    out = f"predict_{args.index}.png" if args.out is None else args.out
    if ds.image_shape is not None:
        with flag_error("--out"):
            files.check_new_file(out)  # before predicting; save_png checks again as it writes
    image, label = ds.test_example(args.index)
    result = predict.predict_one(ckpt.classifier, image, label)
    names = ds.class_names or tuple(str(c) for c in range(ds.num_classes))
    top = args.top or 1
    if args.json:
        about = predictions.TrainedOn(ds.name, names, ds.image_shape, ds.feature_names, ds.label_column)
        given = {"input": f"{ds.name} test sample {args.index}", "index": args.index}
        [record] = predictions.records([given], result.probabilities[None], names, top)
        record.update(true_class=label, true_class_name=names[label])
        print(json.dumps(_document(ckpt, about, [record]), indent=2))
    else:
        print(f"{ds.name} test sample {args.index}: {result.describe(names=ds.class_names, top=top)}")
    if ds.image_shape is not None:
        with flag_error("--out"):
            out = predict.save_png(image.reshape(ds.image_shape), result.describe(sep="\n", names=ds.class_names), out)
        print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return 0
