"""Run one of the tutorial's experiments (its code: mlpjax/experiments/NAME.py), as `mlpjax experiment NAME`.

Usage: python experiments/run.py NAME [--quick] [--out DIR] [--data-dir DIR] [--seed N]  -> DIR/NAME/
NAME is one of the modules in mlpjax/experiments/ (`mlpjax experiment --help` lists them), or all.
"""

import sys

from mlpjax.cli import main

if __name__ == "__main__":
    sys.exit(main(["experiment", *sys.argv[1:]]))
