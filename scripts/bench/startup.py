"""Start-up: the commands that must not import torch (``--help``, ``--cfg job``), and a
whole small run beside the imports it cannot avoid."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.inputs import make_checkpoint
from bench.measure import Done, manifest_done, measure

LIGHT = ("predict --help", "predict --cfg job")  # target: under 1.5 s each
IMPORTS = "imports alone: torch, pytorch_lightning, hydra"
IMPORTS_PAUSED = "the same imports, cycle collector paused (as litpredict starts)"
DEMO_RUN = "predict, linear demo (2048 rows), end to end"


def bench_startup(workdir: Path, repeats: int, quick: bool = False) -> dict[str, float]:
    """Best wall time of each command over ``repeats`` runs."""
    ckpt = make_checkpoint(workdir, "linear_regression", quick)
    module = [sys.executable, "-m", "litpredict.predict"]

    def demo_run(i: int) -> tuple[list[str], Done]:
        run_dir = workdir / f"startup-run{i}"
        shutil.rmtree(run_dir, ignore_errors=True)  # a --workdir kept from an earlier bench
        return [*module, "model=linear", f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}"], (
            manifest_done(run_dir)
        )

    commands = {
        "predict --help": lambda _: ([*module, "--help"], lambda: 0.0),
        "predict --cfg job": lambda _: ([*module, "--cfg", "job", "ckpt_path=x"], lambda: 0.0),
        IMPORTS: lambda _: (
            [sys.executable, "-c", "import torch, pytorch_lightning, hydra"],
            lambda: 0.0,
        ),
        IMPORTS_PAUSED: lambda _: (
            [
                sys.executable,
                "-c",
                "import gc; gc.disable(); import torch, pytorch_lightning, hydra",
            ],
            lambda: 0.0,
        ),
        DEMO_RUN: demo_run,
    }
    log = workdir / "startup.log"
    times = {}
    for name, command_for in commands.items():
        runs = []
        for i in range(repeats):
            command, done = command_for(i)
            runs.append(measure(command, log, workdir, done).wall_s)
        times[name] = min(runs)
    return times
