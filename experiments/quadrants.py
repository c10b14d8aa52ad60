"""Does a 2-50-4 network learn the four quadrants, and which class does it give (2, 2)?

The `quadrants` experiment (its code: mlpjax/experiments/quadrants.py); the same as `mlpjax experiment quadrants`.
Usage: python experiments/quadrants.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/quadrants/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "quadrants", *sys.argv[1:]]))
