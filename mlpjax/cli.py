"""The ``mlpjax`` command line: parses flags and calls the library. Bad input: one line, exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlpjax.errors import UserInputError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def dropout_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1), got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def add_data_flags(p: argparse.ArgumentParser, default_dataset: str | None = "mnist") -> None:
    from mlpjax.data import DATA_DIR_ENV, DATASETS

    p.add_argument("--dataset", default=default_dataset, metavar="NAME",
                   help=f"one of {', '.join(DATASETS)} (default: {default_dataset})")
    p.add_argument("--data-dir", metavar="DIR",
                   help=f"folder with the four MNIST-format IDX files (default: ${DATA_DIR_ENV}, else tfds)")


def add_train_flags(p: argparse.ArgumentParser) -> None:
    from mlpjax.train import DEFAULT_EPOCHS

    add_data_flags(p)
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs in all (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + ")")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="N", help="default: 128")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[512], metavar="N",
                   help="hidden layer sizes (default: 512)")
    p.add_argument("--activation", default="relu", help="relu, sigmoid, step or tanh (default: relu)")
    p.add_argument("--dropout", type=dropout_rate, default=0.2, metavar="RATE", help="default: 0.2")
    p.add_argument("--optimizer", default="adam",
                   help="sgd, adam, adagrad, rmsprop, adadelta, adamax or nadam (default: adam)")
    p.add_argument("--lr", type=positive_float, metavar="X", help="learning rate (default: Keras' for the optimizer)")
    p.add_argument("--loss", default="categorical_crossentropy",
                   help="categorical_crossentropy, mse, binary_crossentropy, hinge or huber_loss")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for init, dropout and shuffling (default: 0)")


def train_config_from_args(args: argparse.Namespace):
    from mlpjax.train import TrainConfig

    return TrainConfig(dataset=args.dataset, data_dir=args.data_dir, epochs=args.epochs,
                       batch_size=args.batch_size, hidden=tuple(args.hidden), activation=args.activation,
                       dropout=args.dropout, optimizer=args.optimizer, lr=args.lr, loss=args.loss, seed=args.seed)


def cmd_train(args: argparse.Namespace) -> int:
    from mlpjax import data, fileio, model, train

    config = train_config_from_args(args)
    dataset = data.load_dataset(config.dataset, config.data_dir)
    log = None if args.quiet else print
    print(f"{dataset.name}: {len(dataset.x_train)} train, {len(dataset.x_test)} test, "
          f"{dataset.input_dim} features, {dataset.num_classes} classes; {config.epochs} epochs")
    result = train.fit(config, dataset, quiet=args.quiet, log=log)
    print(f"test loss {result.test_metrics['loss']:.4f}, test accuracy {result.test_metrics['accuracy']:.4f}")
    if len(dataset.x_test) > 9:
        probs = model.predict_proba(result.state.params, dataset.x_test[9:10], config=result.state.model)[0]
        print(f"test sample 9: predicted {int(probs.argmax())} (p={float(probs.max()):.3f}), "
              f"true {int(dataset.y_test[9])}")
    if args.output:
        fileio.write_json_atomic(Path(args.output) / "metrics.json", result.record())
        print(f"wrote {Path(args.output) / 'metrics.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlpjax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train the MLP and report test accuracy")
    add_train_flags(p)
    p.add_argument("--output", metavar="DIR", help="write DIR/metrics.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserInputError as e:
        print(f"mlpjax {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
