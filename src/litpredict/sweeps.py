"""Sweep summary: ``summary.csv``, ``summary.json`` and ``summary.png`` in a sweep directory.

Built from the jobs' files (``manifest.json``, Hydra's ``.hydra/overrides.yaml``, the
sweeper's ``jobs.json``), never from memory, so it is right whatever launcher ran the jobs
and whichever of them failed. :class:`SweepSummary` rebuilds it as each job ends, in the
job's own process (Hydra skips ``on_multirun_end`` once any job fails);
``python -m litpredict.sweeps SWEEP_DIR`` rebuilds it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import secrets
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from litpredict.manifest import FILENAME as MANIFEST

CSV, JSON, PNG = "summary.csv", "summary.json", "summary.png"
PLAN = "jobs.json"  # written by hydra_plugins.litpredict.file_glob_sweeper
JOB_ERROR = "job_error.json"  # written by SweepSummary when a job fails before its manifest
LEAD = ("job", "checkpoint", "epoch", "step", "status", "num_predictions")
TAIL = ("duration_s", "predictions_per_s", "job_dir", "error")
_NUM = re.compile(r"^(\d+)(?:_|$)")


def _plan(sweep_dir: Path) -> dict[int, list[str]]:
    try:
        jobs = json.loads((sweep_dir / PLAN).read_text())["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {int(j["num"]): list(j["overrides"]) for j in jobs}


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


def _is_job_dir(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith("."):
        return False
    markers = (MANIFEST, ".hydra", JOB_ERROR)
    return bool(_NUM.match(path.name)) or any((path / m).exists() for m in markers)


def _flat_metrics(metrics: Any, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            flat.update(_flat_metrics(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def job_row(job_dir: Path, plan: dict[int, list[str]] | None = None) -> dict[str, Any]:
    """One row: what the job's manifest says, or why there is none."""
    match = _NUM.match(job_dir.name)
    num = int(match.group(1)) if match else None
    manifest = _read_json(job_dir / MANIFEST)
    failure = _read_json(job_dir / JOB_ERROR)
    row: dict[str, Any] = {"job": num, "job_dir": job_dir.name, "metrics": {}}
    if manifest is None:
        overrides = _job_overrides(job_dir) or (plan or {}).get(num, [])
        row.update(
            checkpoint=_ckpt_from_overrides(overrides),
            status="failed" if failure else "missing",
            error=(failure or {}).get("error")
            or "no manifest.json: the job never started predicting or was killed",
        )
        return row
    checkpoint = manifest.get("checkpoint") or {}
    status = manifest.get("status")
    error = manifest.get("error")
    if status == "running" and failure:  # died in a way the manifest could not record
        status, error = "failed", failure.get("error")
    count, duration = manifest.get("num_predictions"), manifest.get("duration_s")
    row.update(
        checkpoint=checkpoint.get("path"),
        epoch=checkpoint.get("epoch"),
        step=checkpoint.get("global_step"),
        status=status,
        num_predictions=count,
        metrics=_flat_metrics(manifest.get("metrics")),
        duration_s=duration,
        predictions_per_s=round(count / duration, 1)
        if status == "complete" and count and duration
        else None,
        error=error,
    )
    return row


def collect(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job directory of the sweep, plus planned jobs that have no directory yet."""
    sweep_dir = Path(sweep_dir)
    plan = _plan(sweep_dir)
    rows = [job_row(d, plan) for d in sorted(sweep_dir.iterdir()) if _is_job_dir(d)]
    seen = {r["job"] for r in rows}
    for num, overrides in plan.items():
        if num not in seen:
            rows.append(
                {
                    "job": num,
                    "checkpoint": _ckpt_from_overrides(overrides),
                    "status": "pending",
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


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(sweep_dir: Path) -> Iterator[None]:
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
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir):
        rows = collect(sweep_dir)
        columns = _columns(rows)
        summary = {
            "sweep_dir": str(sweep_dir.resolve()),
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "counts": dict(Counter(str(r["status"]) for r in rows)),
            "columns": columns,
            "rows": [{c: _flat(r).get(c) for c in columns} for r in rows],
        }
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in summary["rows"]:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        _write_atomic(sweep_dir / CSV, text.getvalue().encode())
        _write_atomic(sweep_dir / JSON, (json.dumps(summary, indent=2) + "\n").encode())
        if plot:
            from litpredict.sweep_plot import render

            _write_atomic(sweep_dir / PNG, render(rows))
    return summary


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class SweepSummary(Callback):
    """Rebuilds the sweep summary after every prediction job, in the job's own process."""

    @staticmethod
    def _applies(config: Any) -> bool:
        hydra = config.hydra
        if getattr(hydra.mode, "name", str(hydra.mode)) != "MULTIRUN" or "ckpt_path" not in config:
            return False  # single runs and training sweeps have nothing to summarise
        # one task of a multi-task (srun) job: rank 0 writes
        return all(os.environ.get(v, "0") == "0" for v in ("RANK", "SLURM_PROCID"))

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if self._applies(config):  # a re-run job is not failed until it fails again
            (Path(config.hydra.runtime.output_dir) / JOB_ERROR).unlink(missing_ok=True)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        if not self._applies(config):
            return
        hydra = config.hydra
        job_dir = Path(hydra.runtime.output_dir)
        marker = job_dir / JOB_ERROR
        if job_return.status == JobStatus.FAILED:
            error = _one_line(job_return._return_value)
            _write_atomic(marker, (json.dumps({"error": error}) + "\n").encode())
        else:
            marker.unlink(missing_ok=True)
        try:
            write_summary(hydra.sweep.dir)
        except Exception as error:  # a summary problem must not fail a finished job
            print(f"litpredict: could not write the sweep summary: {error}", file=sys.stderr)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if "ckpt_path" in config and Path(config.hydra.sweep.dir).is_dir():
            write_summary(config.hydra.sweep.dir)


def _table(summary: dict[str, Any]) -> str:
    shown = ["job", "status", "epoch", "step", "num_predictions"]
    shown += [c for c in summary["columns"] if c not in LEAD and c not in TAIL]
    lines = ["\t".join(shown)]
    for row in summary["rows"]:
        cells = [
            ""
            if row.get(c) is None
            else f"{row[c]:.4g}"
            if isinstance(row[c], float)
            else str(row[c])
            for c in shown
        ]
        lines.append("\t".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="litpredict-summary",
        description="Rebuild summary.csv/.json/.png of a sweep directory from its jobs' manifests.",
    )
    parser.add_argument("sweep_dir", type=Path, help="the multirun directory (holds multirun.yaml)")
    parser.add_argument("--no-plot", action="store_true", help="skip summary.png")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(
            f"litpredict: error: {args.sweep_dir} is not a directory\n"
            "  fix: pass the sweep directory of a multirun (hydra.sweep.dir)",
            file=sys.stderr,
        )
        return 2
    if not collect(args.sweep_dir):
        print(
            f"litpredict: error: {args.sweep_dir} holds no job directories\n"
            "  fix: pass the sweep directory itself, the one holding multirun.yaml and "
            "the numbered job folders",
            file=sys.stderr,
        )
        return 2
    summary = write_summary(args.sweep_dir, plot=not args.no_plot)
    print(_table(summary))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary["counts"].items()))
    print(f"{counts} -> {args.sweep_dir / CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
