"""``mlpjax draw``: a window to draw a digit and have a model recognise it."""

from __future__ import annotations

import argparse

from mlpjax.errors import UserInputError

NAME = "draw"
HELP = "draw a digit in a window or a browser page and have the model recognise it"
DESCRIPTION = (
    "Open a window to draw a digit with the mouse; the model of a run directory (or one trained now "
    "with --train-quick) recognises it. The window needs a display (on a headless machine: xvfb-run "
    "mlpjax draw DIR); --web serves the same as a page in the browser, with what the network sees "
    "(saliency, hidden activations, the most active units' weights), and needs no display."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", nargs="?", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    p.add_argument("--best", action="store_true", help="the best epoch (--save-best) instead of the last")
    p.add_argument(
        "--train-quick",
        action="store_true",
        help="no DIR: train 1 epoch of MNIST now (needs --data-dir or $MLPJAX_DATA_DIR)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="with --train-quick: the folder with the MNIST IDX files")
    p.add_argument(
        "--web",
        action="store_true",
        help="a page in the browser instead of a window (no display needed), with what the network sees",
    )
    p.add_argument(
        "--host",
        metavar="ADDR",
        help="with --web: the address to listen on (default: 127.0.0.1, this "
        "machine only; another one is reachable from the network)",
    )
    p.add_argument("--port", type=int, metavar="N", help="with --web: the port (default: 8000; 0: a free one)")


def run(args: argparse.Namespace) -> int:
    from mlpjax.draw import recognize, window

    if args.directory and args.train_quick:
        raise UserInputError(f"give a model DIR ({args.directory}) or --train-quick, not both")
    if not args.directory and not args.train_quick:
        raise UserInputError(
            "no model given: train one with `mlpjax train --output DIR` and run `mlpjax draw DIR`, "
            "or run `mlpjax draw --train-quick` to train a 1-epoch MNIST model first"
        )
    if args.directory and args.data_dir is not None:
        raise UserInputError(f"--data-dir is for --train-quick; the model in {args.directory} needs no data")
    if args.train_quick and args.best:
        raise UserInputError("--best picks the best epoch of a model DIR; --train-quick trains a model of one epoch")
    if args.web or args.host is not None or args.port is not None:  # the page in a browser: mlpjax.cli.web
        from mlpjax.cli.web import run_web

        return run_web(args)
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
