"""``python -m litpredict.compare RUN_A RUN_B``: how much predictions changed between two runs.

Class ids: the share of samples whose prediction agrees. Real values: the maximum and mean
absolute difference (and, for (N, C) scores, how often their argmax agrees). The samples
that changed most are listed by index and id. Printed, and written with a plot into
``--out`` (default: ``compare_<A>_vs_<B>`` next to RUN_B).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litpredict.process.reporting import run_command
from litpredict.results.comparison import report, write_comparison
from litpredict.rundir.predictions import read_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litpredict.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_a", type=Path, help="a complete run (or job) directory")
    parser.add_argument("run_b", type=Path, help="another one, of the same model and data")
    parser.add_argument("--out", type=Path, help="where compare.json/.png and changed.csv go")
    parser.add_argument("--top", type=int, default=10, help="how many changed samples to list")
    args = parser.parse_args(argv)
    return run_command(lambda: _compare(args))


def _compare(args: argparse.Namespace) -> int:
    a, b = read_run(args.run_a.resolve()), read_run(args.run_b.resolve())
    out = args.out or args.run_b.resolve().parent / f"compare_{a.run_dir.name}_vs_{b.run_dir.name}"
    result = write_comparison(a, b, out.resolve(), args.top)
    print(report(result))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
