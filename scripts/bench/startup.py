"""Start-up of the commands that must not import torch: ``--help`` and ``--cfg job``."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.measure import measure


def bench_startup(workdir: Path, repeats: int) -> dict[str, float]:
    """Best wall time of ``--help`` and ``--cfg job``."""
    commands = {"predict --help": ["--help"], "predict --cfg job": ["--cfg", "job", "ckpt_path=x"]}
    times = {}
    for name, args in commands.items():
        command = [sys.executable, "-m", "litpredict.predict", *args]
        log = workdir / "startup.log"
        runs = [measure(command, log, workdir, lambda: 0.0).wall_s for _ in range(repeats)]
        times[name] = min(runs)
    return times
