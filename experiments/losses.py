"""Does categorical cross-entropy train the softmax classifier better than mean squared error?

The `losses` experiment (its code: mlpjax/experiments/losses.py); the same as `mlpjax experiment losses`.
Usage: python experiments/losses.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/losses/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "losses", *sys.argv[1:]]))
