"""Does dropout shrink the gap between training and test accuracy (overfitting)?

The `dropout` experiment (its code: mlpjax/experiments/dropout.py); the same as `mlpjax experiment dropout`.
Usage: python experiments/dropout.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/dropout/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "dropout", *sys.argv[1:]]))
