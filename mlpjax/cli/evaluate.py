"""``mlpjax evaluate``: the test figures of a saved model, and its confusion matrix."""

from __future__ import annotations

import argparse

from mlpjax.cli.flags import add_saved_model_flags, flag_error

NAME = "evaluate"
HELP = "test loss, accuracy, precision, recall and F1 of a saved model"
DESCRIPTION = (
    "Rebuild the model of a run directory from its saved config and evaluate it on the test set of its "
    "dataset (or of another of the same shape): loss, accuracy, precision, recall and F1, and with "
    "--confusion the confusion matrix and per-class figures."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_saved_model_flags(p)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument(
        "--confusion",
        metavar="FILE.png",
        help="draw the confusion matrix into FILE.png and print per-class precision and recall",
    )


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from mlpjax import files
    from mlpjax.core.metrics import example_metrics
    from mlpjax.runs import run as runs

    if args.confusion is not None:
        with flag_error("--confusion"):
            files.check_new_file(args.confusion)  # before evaluating; written below, never replacing a file
    report = runs.evaluate(args.directory, dataset=args.dataset, data_dir=args.data_dir, best=args.best)
    if args.confusion is not None:
        from mlpjax import plots

        title = f"{report['dataset']} test, epoch {report['epoch']}"
        with flag_error("--confusion"):
            cm = np.asarray(report["confusion"])
            plots.confusion_matrix(cm, args.confusion, class_names=report["class_names"], title=title, replace=False)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    m = report["test_metrics"]
    registered = "".join(f", {name} {m[name]:.4f}" for name in example_metrics() if name in m)
    print(
        f"{report['checkpoint']} (epoch {report['epoch']}) on {report['dataset']} test: loss {m['loss']:.4f}, "
        f"accuracy {m['accuracy']:.4f}, precision {m['precision']:.4f}, recall {m['recall']:.4f} (Keras'); "
        f"precision_macro {m['precision_macro']:.4f}, recall_macro {m['recall_macro']:.4f}, "
        f"f1_macro {m['f1_macro']:.4f}{registered}"
    )
    if args.confusion is not None:
        print(per_class_table(report))
        print(f"wrote {args.confusion}")
    return 0


def per_class_table(report: dict) -> str:
    """Per-class precision, recall and support of an evaluation report, one line per class."""
    names, pc = report["class_names"], report["per_class"]
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'class':<{width}}  precision  recall  support"]
    for name, p, r, n in zip(names, pc["precision"], pc["recall"], pc["support"], strict=True):
        lines.append(f"{name:<{width}}  {p:9.4f}  {r:6.4f}  {int(n):7d}")
    return "\n".join(lines)
