"""What test accuracy do 2 and 10 epochs give (tutorial: 0.9716 and about 0.98), and how much does it vary?

The `epochs` experiment (its code: mlpjax/experiments/epochs.py); the same as `mlpjax experiment epochs`.
Usage: python experiments/epochs.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/epochs/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "epochs", *sys.argv[1:]]))
