"""A sweep's console: one line per job; banners and library warnings go to the job's log.

Lightning prints its accelerator and tips banners and a few warnings in every job; over a
hundred checkpoints they bury the one line that matters. In a sweep job the console
handlers keep only litpredict's warnings and any error; every record still reaches the
job's log file (``<job dir>/predict.log``), Python warnings included.
"""

from __future__ import annotations

import functools
import logging
import sys

_LIGHTNING = ("pytorch_lightning", "lightning_fabric", "lightning")  # and their children


class _ProblemsOnly(logging.Filter):
    """Errors from anyone; warnings from litpredict only (others' are in the log file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return record.levelno >= logging.WARNING and record.name.startswith("litpredict")


def _is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return not isinstance(handler, logging.FileHandler) and stream in (sys.stdout, sys.stderr)


def _import_lightning() -> None:
    """Import the Lightning packages now, so their console handlers exist to be removed."""
    import importlib
    import importlib.util

    for name in ("pytorch_lightning", "lightning.pytorch"):
        try:
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                importlib.import_module(name)
        except Exception:  # a broken optional package: its banners stay
            continue


@functools.cache
def _lightning_through_root() -> None:
    """Once a process: Lightning's own console handlers (added when its packages are
    imported, so imported here first) would bypass the root's filter. Hydra's per-job
    logging setup leaves them alone, so one pass over the (many) loggers is enough."""
    _import_lightning()
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.split(".")[0] not in _LIGHTNING:
            continue
        for handler in [h for h in logger.handlers if _is_console(h)]:
            logger.removeHandler(handler)
        logger.propagate = True


def quiet_job_console() -> None:
    """Call at the start of each sweep job, after Hydra configured the job's logging."""
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> log file
    _lightning_through_root()
    for handler in logging.getLogger().handlers:  # Hydra made them anew for this job
        if _is_console(handler) and not any(isinstance(f, _ProblemsOnly) for f in handler.filters):
            handler.addFilter(_ProblemsOnly())


def job_line(row: dict, progress_line: str) -> str:
    """``[3/100 done, 0:02 elapsed, ETA 0:41] #2 epoch=2-step=30: complete, 2048 predictions``."""
    what = f"{row.get('num_predictions')} predictions" if row.get("num_predictions") else ""
    if row.get("error"):
        what = str(row["error"])
    name = row.get("job_dir") or f"#{row.get('job')}"
    return f"{progress_line} {name}: {row.get('status')}" + (f", {what}" if what else "")
