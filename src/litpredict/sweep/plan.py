"""``jobs.json``: every job of a sweep, written by the sweeper before any job starts.

The sweep summary reads it to list jobs that have no directory yet. Imported by the Hydra
plugin at the start of every Hydra app, so only the standard library and
:mod:`litpredict.rundir.files` here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from litpredict.rundir.files import write_json

FILENAME = "jobs.json"


def write_plan(sweep_dir: str | Path, jobs: Sequence[Sequence[str]]) -> Path:
    """Write each job's overrides, numbered in launch order, to ``<sweep_dir>/jobs.json``."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    plan = [{"num": num, "overrides": list(job)} for num, job in enumerate(jobs)]
    return write_json(sweep_dir / FILENAME, {"jobs": plan})


def predicts(config) -> bool:
    """Whether a (sweep's) config is litpredict's predict: it has a ``ckpt_path`` key.

    ``"ckpt_path" in config`` is False while the value is still ``???`` (the sweep's own
    config, before any job's overrides), so the keys are listed instead.
    """
    return "ckpt_path" in list(config)


def read_plan(sweep_dir: str | Path) -> dict[int, list[str]]:
    """Job number -> its overrides; empty if the sweep has no readable plan."""
    try:
        jobs = json.loads((Path(sweep_dir) / FILENAME).read_text())["jobs"]
        return {int(j["num"]): list(j["overrides"]) for j in jobs}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
