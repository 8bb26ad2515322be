"""The sweep summary, updated one job at a time: a finished job reads only its own files.

Rebuilding the summary from every manifest after every job costs O(jobs) per job, O(jobs²)
over a sweep. Instead the summary's rows are kept in ``.summary-state.json`` beside it; a
finished job replaces its own row there. The state is trusted only for the plan
(``jobs.json``) it was made from: a new or re-run sweep in the same directory rebuilds
from the files once, as ``litpredict-summary`` always does. While jobs run,
``summary.csv``/``.json`` are rewritten at most every :data:`FILES_EVERY_S` seconds and
``summary.png`` (matplotlib, ~0.5 s) at most every :data:`PLOT_EVERY_S`; the first job of
a launch, the job that ends the plan and the sweep's end write all three.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litpredict.rundir.manifest import COMPLETE, FAILED, INTERRUPTED
from litpredict.sweep.plan import FILENAME as PLAN
from litpredict.sweep.state import load_rows, save_state

FILES_EVERY_S = 2.0
PLOT_EVERY_S = 15.0


def _merge(rows: list[dict[str, Any]], row: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` with ``row`` in place of its job's old row (same folder, or its pending entry)."""
    kept = [
        r
        for r in rows
        if r.get("job_dir") != row["job_dir"]
        and not (r.get("job_dir") is None and row["job"] is not None and r["job"] == row["job"])
    ]
    kept.append(row)
    return sorted(kept, key=lambda r: (r["job"] is None, r["job"] or 0, r.get("job_dir") or ""))


def _without_agreement(row: dict[str, Any]) -> dict[str, Any]:
    """Agreement with the last job is a full rebuild's column: it changes as jobs finish."""
    from litpredict.sweep.agreement import SUFFIX

    metrics = {k: v for k, v in row.get("metrics", {}).items() if not k.endswith(SUFFIX)}
    return {**row, "metrics": metrics}


def _due(path: Path, every_s: float) -> bool:
    """``path`` is missing or older than ``every_s`` seconds."""
    try:
        return time.time() - path.stat().st_mtime >= every_s
    except OSError:
        return True


@dataclass(frozen=True)
class Progress:
    """Where the sweep stands after a job: for the console's one line per job."""

    finished: int
    failed: int
    total: int
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        if not self.finished:
            return None
        return self.elapsed_s / self.finished * (self.total - self.finished)

    def line(self) -> str:
        eta = "?" if self.eta_s is None else _clock(self.eta_s)
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"[{self.finished}/{self.total} done{failed}, {_clock(self.elapsed_s)} elapsed, "
            f"ETA {eta}]"
        )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _ended(row: dict[str, Any]) -> bool:
    return row["status"] in (COMPLETE, FAILED, INTERRUPTED)


def _all_ended(rows: list[dict[str, Any]]) -> bool:
    return all(_ended(r) for r in rows)


def _progress(sweep_dir: Path, rows: list[dict[str, Any]]) -> Progress:
    ended = [r for r in rows if _ended(r)]
    failed = sum(r["status"] != COMPLETE for r in ended)
    try:
        started = (sweep_dir / PLAN).stat().st_mtime  # written just before the first job
    except OSError:
        started = time.time()
    elapsed = max(0.0, time.time() - started)
    return Progress(len(ended), failed, len(rows), elapsed)


def update_summary(
    sweep_dir: str | Path,
    job_dir: str | Path,
    files_every_s: float = FILES_EVERY_S,
    plot_every_s: float = PLOT_EVERY_S,
) -> tuple[dict[str, Any], Progress]:
    """Put the finished job ``job_dir``'s row into the summary; read no other job's files.

    Returns the job's row and the sweep's progress.
    """
    from litpredict.rundir.manifest import FILENAME as MANIFEST
    from litpredict.sweep.plan import read_plan
    from litpredict.sweep.summary import CSV, PNG, collect, job_row, locked, write_files

    sweep_dir, job_dir = Path(sweep_dir), Path(job_dir)
    with locked(sweep_dir):
        saved = load_rows(sweep_dir)
        if saved is None:  # the first job of this launch: once from every job's files
            rows = collect(sweep_dir)
        else:
            plan = None if (job_dir / MANIFEST).is_file() else read_plan(sweep_dir)
            rows = _merge([_without_agreement(r) for r in saved], job_row(job_dir, plan))
        progress = _progress(sweep_dir, rows)
        # the first job of a launch and the one that ends the plan write everything
        # (Hydra skips on_multirun_end once a job failed)
        last = saved is not None and _all_ended(rows) and not _all_ended(saved)
        everything = saved is None or last
        if everything or _due(sweep_dir / CSV, files_every_s):
            write_files(sweep_dir, rows, plot=everything or _due(sweep_dir / PNG, plot_every_s))
        else:
            save_state(sweep_dir, rows)
    row = next((r for r in rows if r.get("job_dir") == job_dir.name), {})
    return row, progress
