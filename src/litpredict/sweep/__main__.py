"""``python -m litpredict.sweep SWEEP_DIR``: the same as ``litpredict-summary SWEEP_DIR``."""

import sys

from litpredict.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main())
