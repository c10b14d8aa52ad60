"""``mlpjax backprop``: the tutorial's worked 2-2-2 backpropagation example."""

from __future__ import annotations

import argparse

from mlpjax.cli.flags import positive_int

NAME = "backprop"
HELP = "the worked 2-2-2 backpropagation example, checked against jax.grad"
DESCRIPTION = (
    "Walk through the tutorial's 2-2-2 backpropagation example by hand (forward pass, errors, the "
    "gradient of every weight, one update) and check each gradient against jax.grad."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--iterations", type=positive_int, metavar="N", help="then repeat the update N times")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the walk-through")


def run(args: argparse.Namespace) -> int:
    import json

    from mlpjax.teaching import backprop, gradcheck

    step = backprop.worked_step(backprop.ARTICLE)
    reference = gradcheck.article_jax_grads(backprop.ARTICLE)
    trained = backprop.worked_train(backprop.ARTICLE, args.iterations) if args.iterations else None
    if args.json:
        print(json.dumps(backprop.worked_record(step, reference, trained), indent=2))
        return 0
    print(backprop.walkthrough(step, reference))
    if trained is not None:
        print()
        print(backprop.training_lines(trained))
    return 0
