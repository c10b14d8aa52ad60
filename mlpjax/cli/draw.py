"""``mlpjax draw``: a window to draw a digit and have a model recognise it."""

from __future__ import annotations

import argparse

from mlpjax.errors import UserInputError

NAME = "draw"
HELP = "a window to draw a digit with the mouse and have the model recognise it"
DESCRIPTION = ("Open a window to draw a digit with the mouse; the model of a run directory (or one trained now "
               "with --train-quick) recognises it. Needs a display (on a headless machine: xvfb-run mlpjax draw "
               "DIR).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", nargs="?", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")
    p.add_argument("--train-quick", action="store_true",
                   help="no DIR: train 1 epoch of MNIST now (needs --data-dir or $MLPJAX_DATA_DIR)")
    p.add_argument("--data-dir", metavar="DIR", help="with --train-quick: the folder with the MNIST IDX files")


def run(args: argparse.Namespace) -> int:
    from mlpjax.draw import recognize, window

    if args.directory and args.train_quick:
        raise UserInputError(f"give a model DIR ({args.directory}) or --train-quick, not both")
    if not args.directory and not args.train_quick:
        raise UserInputError("no model given: train one with `mlpjax train --output DIR` and run `mlpjax draw DIR`, "
                             "or run `mlpjax draw --train-quick` to train a 1-epoch MNIST model first")
    if args.directory and args.data_dir is not None:
        raise UserInputError(f"--data-dir is for --train-quick; the model in {args.directory} needs no data")
    if args.train_quick and args.best:
        raise UserInputError("--best picks the best epoch of a model DIR; --train-quick trains a model of one epoch")
    # every flag is checked before the display is looked at, and the display before the slow training
    if args.directory:
        from mlpjax.runs.checkpoint import load_model

        classifier = load_model(args.directory, best=args.best)
        recognize.check_model(classifier)
        window.check_display(probe=True)
    else:
        from mlpjax import data

        dataset = data.load_dataset("mnist", args.data_dir)
        window.check_display(probe=True)
        classifier = recognize.train_quick_model(dataset=dataset)
    win = window.DrawWindow(classifier, on_recognise=lambda r: print(f"recognised {r.text}", flush=True))
    print("window open: draw a digit; Recognise (Enter), Clear (Escape)", flush=True)
    win.run()
    return 0
