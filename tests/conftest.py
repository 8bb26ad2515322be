"""Shared test helpers: run the real commands in subprocesses, train small checkpoints once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("linear_regression", "image_classification", "sequence")


def run_cli(
    module: str,
    *overrides: str,
    cwd: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``python -m litpredict.<module> overrides...`` in ``cwd``; output captured."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", f"litpredict.{module}", *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"litpredict.{module} {' '.join(overrides)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """One short training run per experiment: {experiment: run dir with checkpoints/}."""
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for experiment in EXPERIMENTS:
        run_dir = root / experiment
        run_cli(
            "train",
            f"experiment={experiment}",
            "trainer.max_epochs=2",
            f"hydra.run.dir={run_dir}",
            cwd=root,
        )
        runs[experiment] = run_dir
    return runs
