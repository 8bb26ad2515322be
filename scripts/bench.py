"""Benchmark litpredict against the plain-torch floor and the seed article (``scripts/bench/``).

    python scripts/bench.py [--quick] [--out FILE.md|FILE.json] [--only linear,memory,...]

The code is in the ``bench`` package beside this file; see its docstring for what is
measured and how. This file is the command and what ``--worker`` processes run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench package beside this file

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
