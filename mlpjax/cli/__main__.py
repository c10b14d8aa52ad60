"""``python -m mlpjax.cli``: the command line."""

import sys

from mlpjax.cli import main

sys.exit(main())
