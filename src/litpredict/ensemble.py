"""``python -m litpredict.ensemble SWEEP_DIR``: one run directory from several jobs' predictions.

Predictions in dataset order, written through the writer's own formats, with metrics when
``--labels`` are given, and a manifest (``status: complete`` written last) listing each
member: job directory, checkpoint sha256, output sha256. ``litpredict.reproduce`` verifies
such a run by combining the members again and comparing hashes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from litpredict.process.reporting import run_command
from litpredict.results.combine import METHODS
from litpredict.results.ensembles import FORMAT_NAMES, select_jobs, write_ensemble
from litpredict.rundir.predictions import read_run


def _job_numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of job numbers: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litpredict.ensemble", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory (hydra.sweep.dir)")
    parser.add_argument("--method", choices=METHODS, help="default: vote for class ids, else mean")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--jobs", type=_job_numbers, help="job numbers, e.g. 3,4,5")
    which.add_argument("--last", type=int, metavar="K", help="the last K complete jobs")
    parser.add_argument("--out", type=Path, help="the run directory to write")
    parser.add_argument("--format", choices=FORMAT_NAMES, default="npy", help="writer format")
    parser.add_argument("--labels", type=Path, help=".npy labels in dataset order: metrics")
    args = parser.parse_args(argv)
    if args.last is not None and args.last < 1:
        parser.error("--last needs K >= 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(lambda: _ensemble(args))


def _ensemble(args: argparse.Namespace) -> int:
    sweep_dir = args.sweep_dir.resolve()
    dirs = select_jobs(sweep_dir, args.jobs, args.last)
    members = [read_run(d) for d in dirs]
    name = "-".join(d.name.split("_", 1)[0] for d in dirs)
    out = args.out or sweep_dir.with_name(
        f"{sweep_dir.name}_ensemble_{args.method or 'auto'}_{name}"
    )
    result = write_ensemble(members, out.resolve(), args.method, args.format, args.labels)
    metrics = ", ".join(f"{k}={v:.6g}" for k, v in (result.get("metrics") or {}).items())
    print(
        f"{len(members)} members -> {out} ({result['num_predictions']} predictions"
        f"{'; ' + metrics if metrics else ''})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
