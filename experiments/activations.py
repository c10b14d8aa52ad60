"""Can the MLP learn with a step activation, as with sigmoid and ReLU?

The `activations` experiment (its code: mlpjax/experiments/activations.py); the same as `mlpjax experiment activations`.
Usage: python experiments/activations.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/activations/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "activations", *sys.argv[1:]]))
