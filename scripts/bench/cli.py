"""``python scripts/bench.py [--quick] [--only linear,...] [--out FILE] [--workdir DIR]``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import bench
from bench.approaches import run_worker
from bench.report import machine, report, write_out
from bench.sections import Options, sections


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        return run_worker(argv)
    every = list(sections(quick=False))
    parser = argparse.ArgumentParser(description=bench.__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (linear only)")
    parser.add_argument("--only", help=f"comma list of {','.join(every)}")
    parser.add_argument("--out", type=Path, help="also write the table (.md) or results (.json)")
    parser.add_argument("--workdir", type=Path, help="keep inputs and checkpoints here, reused")
    parser.add_argument("--repeats", type=int, help="runs per size and approach (best is kept)")
    args = parser.parse_args(argv)
    available = sections(args.quick)
    wanted = args.only.split(",") if args.only else list(available)
    if set(wanted) - set(every):
        parser.error(f"unknown --only {sorted(set(wanted) - set(every))}; choose from {every}")
    about = machine()
    print(f"Machine: {about}", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="litpredict-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    options = Options(workdir, args.quick, args.repeats)
    try:
        results = [available[name].run(options) for name in wanted if name in available]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    about += f", {os.getloadavg()[0]:.2f} at the end"
    text = report(results, about)
    print("\n" + text, flush=True)
    if args.out:
        write_out(args.out, text, results, about)
    return 0
