"""An ensemble run: several jobs' predictions combined into one run directory.

Written through the writer's own formats, with metrics when labels are given, and a
manifest (``status: complete`` last) listing each member; reproduced by combining the
members again and comparing hashes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import filesystem_errors_explained, first_line
from litpredict.results.combine import EnsembleError, check_members, combine, default_method
from litpredict.rundir.predictions import RunOutputs, member_record, read_run

log = logging.getLogger(__name__)
STAGING = ".staging"
FORMAT_NAMES = ("npy", "pt", "parquet", "csv")


def select_jobs(sweep_dir: Path, jobs: list[int] | None, last: int | None) -> list[Path]:
    """The members' job directories, in job (training) order.

    ``jobs`` by number, each of which must be complete; else the ``last`` complete jobs,
    or every complete job. Incomplete jobs left out are named in the log.
    """
    from litpredict.rundir.manifest import COMPLETE
    from litpredict.sweep.summary import collect

    if not sweep_dir.is_dir():
        raise EnsembleError(f"{sweep_dir} is not a directory", "pass a sweep directory")
    rows = [r for r in collect(sweep_dir) if r.get("job_dir") and r.get("job") is not None]
    by_num = {r["job"]: r for r in rows}
    if jobs is not None:
        for num in jobs:
            if num not in by_num:
                raise EnsembleError(
                    f"{sweep_dir} has no job {num} (jobs: {', '.join(map(str, sorted(by_num)))})",
                    "pass --jobs with numbers from the sweep's summary.csv",
                )
            row = by_num[num]
            if row["status"] != COMPLETE:
                raise EnsembleError(
                    f"job {num} ({row['job_dir']}) is {row['status']}, not complete",
                    "resume the sweep to complete it, or leave it out of --jobs",
                )
        chosen = [by_num[num] for num in jobs]
    else:
        complete = [r for r in rows if r["status"] == COMPLETE]
        skipped = [r["job_dir"] for r in rows if r["status"] != COMPLETE]
        if skipped:
            log.warning("left out, not complete: %s", ", ".join(skipped))
        chosen = complete[-last:] if last else complete
    if not chosen:
        raise EnsembleError(
            f"{sweep_dir} holds no complete job", "pass the directory of a sweep whose jobs ran"
        )
    dirs = [sweep_dir / r["job_dir"] for r in chosen]
    root = sweep_dir.resolve()
    for job_dir in dirs:  # a link to a run elsewhere is no job of this sweep
        if not job_dir.resolve().is_relative_to(root):
            raise EnsembleError(
                f"{job_dir} resolves to {job_dir.resolve()}, outside the sweep directory "
                f"{root}: an ensemble's members are jobs of one sweep",
                "leave it out with --jobs (or move that run into the sweep it belongs to)",
            )
    return dirs


LABELS_FIX = "pass a .npy file of one label per predicted sample, in dataset order"


def _labels(path: Path | None, n: int) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """The ``--labels`` array and its record; checked before anything is written: a file
    (a FIFO would block forever), numbers (never unpickled), one label per prediction."""
    if path is None:
        return None, None
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.predictions import RunOutputsError, numeric_npy

    try:
        labels = numeric_npy(path, "--labels", LABELS_FIX)
    except RunOutputsError as error:
        raise EnsembleError(error.problem, error.fix) from None
    if labels.ndim == 0:
        raise EnsembleError(
            f"--labels {path} holds a single value (a 0-d array), not one label per sample",
            LABELS_FIX,
        )
    if len(labels) != n:
        raise EnsembleError(
            f"--labels {path} holds {len(labels)} labels for {n} predictions",
            "pass the labels of the predict dataset, one per sample, in dataset order",
        )
    return labels, {"path": str(path.resolve()), "sha256": sha256_file(path)}


@filesystem_errors_explained  # a full disk or a read-only --out: a message, not a traceback
def write_ensemble(
    members: list[RunOutputs],
    out: Path,
    method: str | None = None,
    format: str = "npy",
    labels: Path | None = None,
) -> dict[str, Any]:
    """Combine ``members`` into the run directory ``out``; its manifest's data.

    ``out`` follows the ownership rule (:func:`~litpredict.rundir.ownership.check_output`):
    a new or empty folder, or an ensemble run of its own, held locked while it is written.
    A complete ensemble there is never overwritten; a failed or interrupted one (a bad
    ``--labels``, a full disk, SIGINT/SIGTERM, a killed process) is redone from the start.
    """
    from litpredict.rundir.ownership import ENSEMBLE, clear_attempt, owned_output, refuse_complete

    orders = check_members(members)  # rows pair by sample: each member's order
    inputs = [m.run_dir for m in members] + ([labels] if labels is not None else [])
    with owned_output(out, ENSEMBLE, inputs) as earlier:
        refuse_complete(earlier, out)
        redo = None
        if earlier is not None:
            redo = earlier.get("status")
            removed = clear_attempt(out, earlier)
            log.info(
                "redoing the %s ensemble in %s (%d files of it removed)", redo, out, len(removed)
            )
        return _write_ensemble(members, orders, out, method, format, labels, redo)


def _write_ensemble(
    members: list[RunOutputs],
    orders: list[np.ndarray | None],
    out: Path,
    method: str | None,
    format: str,
    labels: Path | None,
    redo: str | None,
) -> dict[str, Any]:
    from litpredict.process.signals import interrupts_held
    from litpredict.rundir import provenance
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.manifest import COMPLETE, Manifest, end_status
    from litpredict.writing.formats import FORMATS, publish
    from litpredict.writing.metrics import label_metrics

    first = members[0]
    if format not in FORMATS:
        raise EnsembleError(f"unknown format {format!r}", f"pass one of {', '.join(FORMAT_NAMES)}")
    targets, labels_record = _labels(labels, first.num_predictions)
    keys = list(first.arrays)
    methods = {k: method or default_method([first.arrays[k]]) for k in keys}
    manifest = Manifest(out)
    manifest.start(
        kind="ensemble",
        ensemble={
            "methods": methods,
            "format": format,
            "members": [member_record(m) for m in members],
        },
        data=first.manifest.get("data"),
        git=provenance.git_state(),
        versions=provenance.versions(),
        **provenance.host(),
        **({"redone_after": redo} if redo else {}),
    )
    staging = out / STAGING
    completed = False
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        combined = {}
        for key in keys:
            array = combine([m.arrays[key] for m in members], methods[key], key, orders)
            np.save(staging / f"{key}.npy", array)
            combined[key] = np.load(staging / f"{key}.npy", mmap_mode="r")
        metrics = label_metrics(combined, first.kind, targets)
        staged = FORMATS[format](combined, first.kind, first.ids, staging)
        del combined
        outputs = [
            {"path": rel, "sha256": sha256_file(src), "bytes": src.stat().st_size}
            for src, rel in staged
        ]
        # final names and ``complete`` together, or neither: an interrupt waits for both
        with interrupts_held():
            publish(staged, out)
            shutil.rmtree(staging, ignore_errors=True)
            manifest.finish(
                COMPLETE,
                outputs=outputs,
                num_predictions=first.num_predictions,
                metrics=metrics,
                **({"labels": labels_record} if labels_record else {}),
            )
            completed = True
    except BaseException as error:
        if completed:  # a signal held until the run was complete: it stays complete
            log.warning("%s once the ensemble was complete", first_line(error))
            return manifest.data
        manifest.finish(end_status(error), error=first_line(error))
        raise
    return manifest.data


def reproduce_ensemble(run_dir: Path, new_dir: Path | None) -> int:
    """Combine an ensemble run's members again into ``new_dir``; 0 when every hash matches.

    Nothing is built or imported from the manifest: it names only member directories,
    their hashes and the combining method, each checked to be of the form litpredict
    writes (an unknown method is refused, never taken for another).
    """
    import secrets

    from litpredict.results.reproduction import verdict
    from litpredict.rundir.manifest import read_manifest

    manifest = read_manifest(run_dir) or {}
    records, method, format, labels = _checked_spec(run_dir, manifest)
    changes, members = [], []
    for record in records:
        member = read_run(record["job_dir"])
        recorded = {o["path"]: o["sha256"] for o in record["outputs"]}
        now = {o["path"]: o["sha256"] for o in member.manifest.get("outputs", [])}
        if now != recorded:
            changes.append(f"member {record['job_dir']} has other outputs than recorded")
        members.append(member)
    new_dir = new_dir or run_dir.with_name(f"{run_dir.name}.reproduce-{secrets.token_hex(3)}")
    result = write_ensemble(
        members,
        new_dir.resolve(),
        method=method,
        format=format,
        labels=Path(labels["path"]) if labels else None,
    )
    if labels and (result.get("labels") or {}).get("sha256") != labels.get("sha256"):
        changes.append(f"labels {labels['path']} changed (sha256 differs from the manifest's)")
    return verdict(run_dir, new_dir, changes, manifest, result)


class TamperedEnsemble(EnsembleError):
    """An ensemble manifest in a form litpredict never writes."""


def _checked_spec(
    run_dir: Path, manifest: dict[str, Any]
) -> tuple[list[dict[str, Any]], str, str, dict[str, Any] | None]:
    """``(member records, method, format, labels record)`` of an ensemble manifest, each
    checked against what :func:`write_ensemble` writes."""
    from litpredict.results.combine import METHODS

    def refuse(what: str) -> TamperedEnsemble:
        return TamperedEnsemble(
            f"{run_dir}/manifest.json: {what}; litpredict never writes that, so the manifest "
            "was edited and is not reproduced",
            "reproduce an ensemble run directory whose manifest.json litpredict wrote",
        )

    spec = manifest.get("ensemble")
    if not isinstance(spec, dict):
        raise refuse("'ensemble' is not a record")
    format = spec.get("format")
    if not isinstance(format, str) or format not in FORMAT_NAMES:
        raise refuse(f"format {format!r} is not one of {', '.join(FORMAT_NAMES)}")
    records = spec.get("members")
    if not isinstance(records, list) or not records:
        raise refuse(f"members {_short(records)} is not a list of member records")
    for record in records:
        outputs = record.get("outputs") if isinstance(record, dict) else None
        if (
            not isinstance(record.get("job_dir") if isinstance(record, dict) else None, str)
            or not isinstance(outputs, list)
            or not all(
                isinstance(o, dict) and isinstance(o.get("path"), str) and "sha256" in o
                for o in outputs
            )
        ):
            raise refuse(f"member {_short(record)} has no job_dir and outputs")
    methods = spec.get("methods")
    if not isinstance(methods, dict) or not methods:
        raise refuse(f"methods {_short(methods)} is not a record of output: method")
    unknown = [m for m in methods.values() if not isinstance(m, str) or m not in METHODS]
    if unknown:
        raise refuse(f"method {_short(unknown[0])} is not one of {', '.join(METHODS)}")
    if len(set(methods.values())) > 1:
        raise EnsembleError(f"{run_dir} combined outputs by several methods", "not reproducible")
    labels = manifest.get("labels")
    if labels is not None and not (
        isinstance(labels, dict) and isinstance(labels.get("path"), str) and labels["path"]
    ):
        raise refuse(f"labels {_short(labels)} is not a record of a labels file")
    return records, next(iter(methods.values())), format, labels


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
