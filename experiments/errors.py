"""Which digits does the tutorial's model confuse, and which mistakes does it make with confidence?

The `errors` experiment (its code: mlpjax/experiments/errors.py); the same as `mlpjax experiment errors`.
Usage: python experiments/errors.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/errors/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "errors", *sys.argv[1:]]))
