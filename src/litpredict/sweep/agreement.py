"""The summary's column of how each job's predictions agree with the last job's.

``agreement_with_last`` (class ids: the share of samples predicted alike) or
``mean_abs_diff_with_last`` (real values), between each complete job and the last
complete one in job (training) order: how far predictions still move late in training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from litpredict.rundir.manifest import COMPLETE

log = logging.getLogger(__name__)
SUFFIX = "_with_last"


def with_last_job(rows: list[dict[str, Any]], sweep_dir: Path) -> list[dict[str, Any]]:
    """Copies of ``rows`` (of :func:`litpredict.sweep.summary.collect`), each complete one
    with the column in its metrics, computed afresh: the last job changes as jobs finish.
    No column when fewer than two jobs are complete, nor for a job whose outputs differ in
    shape or whose samples are not the last job's (rows pair by sample, never by position).
    Reads every complete job's outputs (memory-mapped, unhashed) at each rebuild."""
    from litpredict.results.comparison import CompareError, headline
    from litpredict.rundir.predictions import read_run

    rows = [{**r, "metrics": _without_column(r.get("metrics") or {})} for r in rows]
    complete = [r for r in rows if r.get("status") == COMPLETE and r.get("job_dir")]
    if len(complete) < 2:
        return rows
    try:
        last = read_run(Path(sweep_dir) / complete[-1]["job_dir"], verify=False)
        for row in complete:
            run = read_run(Path(sweep_dir) / row["job_dir"], verify=False)
            try:
                name, value = headline(run, last)
            except CompareError as error:
                log.debug("no agreement of %s with the last job: %s", row["job_dir"], error)
                continue
            row["metrics"][f"{name}{SUFFIX}"] = value
    except Exception as error:  # a summary is written whatever a job's files hold
        log.debug("no agreement with the last job: %s", error)
    return rows


def _without_column(metrics: dict[str, Any]) -> dict[str, Any]:
    """An incremental update's saved rows hold the column as it was: dropped, recomputed."""
    return {k: v for k, v in metrics.items() if not k.endswith(SUFFIX)}
