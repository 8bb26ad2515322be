"""A sweep's console: one line per job; banners and library warnings go to the job's log.

Lightning prints its accelerator and tips banners and a few warnings in every job; over a
hundred checkpoints they bury the one line that matters. Every job's console already
keeps only litpredict's lines and real problems (:mod:`litpredict.process.console`); in a
sweep job the console handlers keep only litpredict's warnings and any error. Every record
still reaches the job's log file (``<job dir>/predict.log``), Python warnings included.
"""

from __future__ import annotations

import logging

from litpredict.process.console import is_console_handler, route_to_log


class _ProblemsOnly(logging.Filter):
    """Errors from anyone; warnings from litpredict only (others' are in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return record.levelno >= logging.WARNING and record.name.startswith("litpredict")


def quiet_job_console() -> None:
    """Call at the start of each sweep job, after Hydra configured the job's logging."""
    route_to_log()
    for handler in logging.getLogger().handlers:  # Hydra made them anew for this job
        if is_console_handler(handler) and not any(
            isinstance(f, _ProblemsOnly) for f in handler.filters
        ):
            handler.addFilter(_ProblemsOnly())


def job_line(row: dict, progress_line: str) -> str:
    """``[3/100 done, 0:02 elapsed, ETA 0:41] #2 epoch=2-step=30: complete, 2048 predictions``."""
    what = f"{row.get('num_predictions')} predictions" if row.get("num_predictions") else ""
    if row.get("error"):
        what = str(row["error"])
    name = row.get("job_dir") or f"#{row.get('job')}"
    return f"{progress_line} {name}: {row.get('status')}" + (f", {what}" if what else "")
