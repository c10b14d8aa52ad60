"""What do the training images look like, and what shapes does the network see?

The `samples` experiment (its code: mlpjax/experiments/samples.py); the same as `mlpjax experiment samples`.
Usage: python experiments/samples.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/samples/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "samples", *sys.argv[1:]]))
