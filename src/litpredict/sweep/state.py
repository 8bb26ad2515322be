"""The sweep summary's rows, saved beside it (``.summary-state.json``) between jobs.

Trusted only for the plan (``jobs.json``) it was made from: a new or re-run sweep in the
same directory rebuilds from the files once. Imported by summary.py (which saves it) and
update.py (which merges one job into it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litpredict.rundir.files import write_json
from litpredict.sweep.plan import FILENAME as PLAN

STATE = ".summary-state.json"
_VERSION = 1


def _plan_signature(sweep_dir: Path) -> list[int] | None:
    """What identifies one launch of the sweep: its jobs.json's mtime and size."""
    try:
        stat = (sweep_dir / PLAN).stat()
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def save_state(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The rows as they are now, for the next job's update."""
    state = {"version": _VERSION, "plan": _plan_signature(sweep_dir), "rows": rows}
    write_json(sweep_dir / STATE, state, indent=None)  # only litpredict reads it


def load_rows(sweep_dir: Path) -> list[dict[str, Any]] | None:
    """The saved rows, or None when there are none for this launch of the sweep."""
    try:
        state = json.loads((sweep_dir / STATE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") != _VERSION:
        return None
    if state.get("plan") != _plan_signature(sweep_dir) or not isinstance(state.get("rows"), list):
        return None
    return state["rows"]
