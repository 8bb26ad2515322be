"""The sweep summary: one row per job, ``summary.csv``, ``summary.json`` (and ``summary.png``).

Built from the jobs' files (``manifest.json``, Hydra's ``.hydra/overrides.yaml``, the
sweeper's ``jobs.json``, ``job_error.json``), never from memory, so it is right whatever
launcher ran the jobs and whichever of them failed. The ``SweepSummary`` Hydra callback
merges each finished job's row into it (:mod:`litpredict.sweep.update`) and the sweep rebuilds
it at its end; ``litpredict-summary SWEEP_DIR`` rebuilds it by hand.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from litpredict.rundir.files import atomic_write, json_text, write_json
from litpredict.rundir.manifest import COMPLETE, FAILED, INTERRUPTED, RUNNING
from litpredict.rundir.manifest import FILENAME as MANIFEST
from litpredict.sweep.plan import read_plan

CSV, JSON, PNG = "summary.csv", "summary.json", "summary.png"
JOB_ERROR = "job_error.json"  # a job that failed before (or without) its manifest saying so
LEAD = ("job", "checkpoint", "epoch", "step", "status", "num_predictions")
# data_s, model_s, write_s: where the job's predict loop spent its time (rank 0's stages)
STAGE_COLUMNS = ("data_s", "model_s", "write_s")
TAIL = ("duration_s", "predictions_per_s", *STAGE_COLUMNS, "job_dir", "error", "redone_because")

# Statuses only a summary row has, beside the manifest's RUNNING/COMPLETE/FAILED/INTERRUPTED.
MISSING = "missing"  # a job directory without a manifest: never started predicting, or killed
PENDING = "pending"  # in the plan, but no job directory (yet)

_NUM = re.compile(r"^(\d+)(?:_|$)")


def write_job_error(job_dir: str | Path, error: str) -> None:
    """Record why a job failed, for a row whose manifest is missing or still says running."""
    write_json(Path(job_dir) / JOB_ERROR, {"error": error})


def clear_job_error(job_dir: str | Path) -> None:
    """A re-run job is not failed until it fails again."""
    (Path(job_dir) / JOB_ERROR).unlink(missing_ok=True)


def _ckpt_from_overrides(overrides: list[str]) -> str | None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for line in overrides:
        if line.lstrip("+").startswith("ckpt_path="):
            with contextlib.suppress(Exception):
                value = OverridesParser.create().parse_override(line).value()
                return str(value).replace("\\${", "${")  # quoted by the sweeper
    return None


def _job_overrides(job_dir: Path) -> list[str]:
    try:
        from omegaconf import OmegaConf

        return [str(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")]
    except Exception:
        return []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_manifest_file(job_dir: Path) -> dict[str, Any] | None:
    """A job's manifest, or None; the summary's one reader of manifests (tests count calls)."""
    return _read_json(job_dir / MANIFEST)


def _is_job_dir(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith("."):
        return False
    if _NUM.match(path.name):
        return True
    if (path / MANIFEST).exists():  # compare's default folder sits beside its run B
        from litpredict.rundir.ownership import PREDICT, command_of

        return command_of(read_manifest_file(path)) in (PREDICT, None)
    return any((path / m).exists() for m in (".hydra", JOB_ERROR))


def _status_now(job_dir: Path, manifest: dict[str, Any]) -> tuple[Any, Any]:
    """``(status, error)``: the manifest's, except that ``running`` under a free run lock
    is a job whose process died without recording it (killed, crashed, out of memory)."""
    from litpredict.rundir.lock import lock_is_held

    status, error = manifest.get("status"), manifest.get("error")
    if status != RUNNING or lock_is_held(job_dir) is not False:
        return status, error
    again = read_manifest_file(job_dir) or {}  # it may have ended as the lock was probed
    if again.get("status") != RUNNING:
        return again.get("status"), again.get("error")
    return INTERRUPTED, (
        "the job stopped without recording its end (killed or crashed): no process holds "
        "its run directory; run the sweep again to redo it"
    )


def _flat_metrics(metrics: Any, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            flat.update(_flat_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def is_other_command(manifest: dict[str, Any] | None) -> bool:
    """Whether a folder's manifest is of a run that another command wrote there, not a job
    (``ensemble --out SWEEP/5_ens`` is not job 5)."""
    return "ensemble" in (manifest or {})


def job_row(job_dir: Path, plan: dict[int, list[str]] | None = None) -> dict[str, Any]:
    """One row: what the job's manifest says, or why there is none."""
    return _row(job_dir, read_manifest_file(job_dir), plan)


def _row(
    job_dir: Path, manifest: dict[str, Any] | None, plan: dict[int, list[str]] | None
) -> dict[str, Any]:
    match = _NUM.match(job_dir.name)
    num = int(match.group(1)) if match else None
    failure = _read_json(job_dir / JOB_ERROR)
    row: dict[str, Any] = {"job": num, "job_dir": job_dir.name, "metrics": {}}
    if manifest is None:
        overrides = _job_overrides(job_dir) or (plan or {}).get(num, [])
        row.update(
            checkpoint=_ckpt_from_overrides(overrides),
            status=FAILED if failure else MISSING,
            error=(failure or {}).get("error")
            or "no manifest.json: the job never started predicting or was killed",
        )
        return row
    checkpoint = manifest.get("checkpoint") or {}
    status, error = manifest.get("status"), manifest.get("error")
    if status == RUNNING and failure:  # died in a way the manifest could not record
        status, error = FAILED, failure.get("error")
    elif status == RUNNING:  # or died without a word: its lock says whether it still runs
        status, error = _status_now(job_dir, manifest)
    count, duration = manifest.get("num_predictions"), manifest.get("duration_s")
    stages = manifest.get("stages") if isinstance(manifest.get("stages"), dict) else {}
    row.update(
        checkpoint=checkpoint.get("path"),
        epoch=checkpoint.get("epoch"),
        step=checkpoint.get("global_step"),
        status=status,
        num_predictions=count,
        metrics=_flat_metrics(manifest.get("metrics")),
        duration_s=duration,
        predictions_per_s=round(count / duration, 1)
        if status == COMPLETE and count and duration
        else None,
        **{column: stages.get(column) for column in STAGE_COLUMNS},
        error=error,
        redone_because=manifest.get("redone_because"),  # a complete run of another config
    )
    return row


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job directory of the sweep, plus planned jobs that have no directory yet.

    Runs that other commands wrote into the sweep directory (an ensemble) are no jobs."""
    sweep_dir = Path(sweep_dir)
    plan = read_plan(sweep_dir)
    rows = []
    for folder in sorted(sweep_dir.iterdir()):
        if not _is_job_dir(folder):
            continue
        manifest = read_manifest_file(folder)
        if not is_other_command(manifest):
            rows.append(_row(folder, manifest, plan))
    seen = {r["job"] for r in rows}
    for num, overrides in plan.items():
        if num not in seen:
            rows.append(
                {
                    "job": num,
                    "checkpoint": _ckpt_from_overrides(overrides),
                    "status": PENDING,
                    "metrics": {},
                    "error": "not started yet (or its job directory is gone)",
                }
            )
    return sorted(rows, key=lambda r: (r["job"] is None, r["job"] or 0, r.get("job_dir") or ""))


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    metrics = sorted({k for r in rows for k in r["metrics"]})
    return [*LEAD, *metrics, *TAIL]


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "metrics"}, **row["metrics"]}


def _csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return text.getvalue()


def _json_text(summary: dict[str, Any]) -> str:
    """summary.json, indented, with one row a line: readable, and quick to write while a
    long sweep runs (each row by the C encoder)."""
    head = json_text({k: v for k, v in summary.items() if k != "rows"})  # "{\n  ...\n}"
    rows = ",\n    ".join(json_text(row, indent=None) for row in summary["rows"])
    body = f"[\n    {rows}\n  ]" if rows else "[]"
    return head.removesuffix("\n}") + f',\n  "rows": {body}\n}}\n'


@contextlib.contextmanager
def locked(sweep_dir: Path) -> Iterator[None]:
    """One rebuild at a time: the last job to finish then always writes the final summary."""
    try:
        import fcntl
    except ImportError:  # not POSIX: rebuilds may interleave; the CLI repairs the result
        yield
        return
    with open(sweep_dir / ".summary.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_summary(sweep_dir: str | Path, plot: bool = True) -> dict[str, Any]:
    """Rebuild summary.csv / .json (/ .png) of ``sweep_dir`` from its jobs' files."""
    from litpredict.sweep.agreement import with_last_job

    sweep_dir = Path(sweep_dir)
    with locked(sweep_dir):
        rows = with_last_job(collect(sweep_dir), sweep_dir)  # full rebuilds only: reads all
        return write_files(sweep_dir, rows, plot=plot)


def write_files(sweep_dir: Path, rows: list[dict[str, Any]], plot: bool) -> dict[str, Any]:
    """summary.csv / .json (/ .png) and the rows' state for the next incremental update.

    Call it holding :func:`locked`.
    """
    from litpredict.sweep.state import save_state

    columns = _columns(rows)
    flat = [_flat(r) for r in rows]
    summary = {
        "sweep_dir": str(sweep_dir.resolve()),
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": dict(Counter(str(r["status"]) for r in rows)),
        "columns": columns,
        "rows": [{c: f.get(c) for c in columns} for f in flat],
    }
    atomic_write(sweep_dir / CSV, _csv_text(columns, summary["rows"]).encode())
    atomic_write(sweep_dir / JSON, _json_text(summary))
    save_state(sweep_dir, rows)
    if plot:
        from litpredict.sweep.plot import render

        atomic_write(sweep_dir / PNG, render(rows))
    return summary
