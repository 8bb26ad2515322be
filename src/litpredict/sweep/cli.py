"""``litpredict-summary SWEEP_DIR``: rebuild a sweep's summary by hand and print it.

For a sweep whose jobs were killed, ran elsewhere, or finished while the summary could not
be written; the files are the same ones the ``SweepSummary`` callback writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from litpredict.sweep.summary import CSV, LEAD, TAIL, collect, write_summary


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(summary: dict[str, Any]) -> str:
    """The rows as tab-separated text: job, status, position in training, metrics."""
    shown = ["job", "status", "epoch", "step", "num_predictions"]
    shown += [c for c in summary["columns"] if c not in LEAD and c not in TAIL]
    lines = ["\t".join(shown)]
    lines += ["\t".join(_cell(row.get(c)) for c in shown) for row in summary["rows"]]
    return "\n".join(lines)


def _usage_error(problem: str, fix: str) -> int:
    print(f"litpredict: error: {problem}\n  fix: {fix}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="litpredict-summary",
        description="Rebuild summary.csv/.json/.png of a sweep directory from its jobs' manifests.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (holds multirun.yaml)")
    parser.add_argument("--no-plot", action="store_true", help="skip summary.png")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        return _usage_error(
            f"{args.sweep_dir} is not a directory",
            "pass the sweep directory of a multirun (hydra.sweep.dir)",
        )
    if not collect(args.sweep_dir):
        return _usage_error(
            f"{args.sweep_dir} holds no job directories",
            "pass the sweep directory itself, the one holding multirun.yaml and "
            "the numbered job folders",
        )
    summary = write_summary(args.sweep_dir, plot=not args.no_plot)
    print(_table(summary))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary["counts"].items()))
    print(f"{counts} -> {args.sweep_dir / CSV}")
    return 0
