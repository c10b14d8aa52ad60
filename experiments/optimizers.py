"""How do the seven Keras optimizers, at their default settings, compare on the same budget?

The `optimizers` experiment (its code: mlpjax/experiments/optimizers.py); the same as `mlpjax experiment optimizers`.
Usage: python experiments/optimizers.py [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/optimizers/
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", "optimizers", *sys.argv[1:]]))
