"""What a run's console shows, and how everything else reaches the run's log file only.

The console (``conf/hydra/job_logging/litpredict.yaml``) gets litpredict's own lines,
warnings about real problems, and errors, once each, from rank 0. Everything goes to the
log file (``<run dir>/<job name>.log``). Three things kept the console noisy:

- Lightning adds console handlers of its own when imported: ``lightning/__init__.py``
  always puts a stderr handler (``INFO: ...``) on the ``lightning`` logger, and
  ``pytorch_lightning``/``lightning.pytorch`` one on theirs when the root logger has no
  handler yet. ``rank_zero_info`` logs to ``lightning.pytorch.utilities.rank_zero`` (or
  the ``pytorch_lightning`` one, whichever package was imported last), so each banner
  reached the console twice: through that handler and through the root's.
  :func:`route_to_log` removes those handlers; the records then go through the root only.
- Python warnings were shown whatever they said; :func:`route_to_log` logs them to
  ``py.warnings`` with their category, and :class:`ConsoleLines` keeps library
  deprecations and Lightning's hints about the user's class design in the log file.
- Under ``ddp_spawn`` the ranks are fresh interpreters with no logging set up;
  :func:`logging_setup` and :func:`set_up_worker` give them the parent's handlers.

Also here: the two lines a prediction prints around its work (:func:`what_runs_line`,
:func:`result_line`). Light: no Lightning or torch import at module level.
"""

from __future__ import annotations

import functools
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from litpredict.process.rank_zero import is_global_zero

LIGHTNING = ("pytorch_lightning", "lightning_fabric", "lightning")  # and their children
WARNINGS_LOGGER = "py.warnings"  # the logger logging.captureWarnings uses
OWN = ("litpredict", "__main__", "__mp_main__")  # the command's module runs as __main__

# Warnings that are about a library's future, not about this run: the log file only.
DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
# Lightning's hints about how the user's classes are written (and its own category for
# hints that "could be false positives": too few DataLoader workers, the logging interval,
# srun not used, GPU available but not used): the log file only.
HINT_CATEGORIES = ("PossibleUserWarning",)
DESIGN_HINTS = (
    "is an instance of `nn.Module` and is already saved during checkpointing",
    "does not have many workers",
    "is smaller than the logging interval",
)


def shows_warning(category: type[Warning], message: str) -> bool:
    """Whether a Python warning is about a real problem in this run (console) or not (log).

    A warning from the user's own code (a ``UserWarning`` in ``predict_step``) or from
    litpredict is shown; deprecations and Lightning's hints are not.
    """
    if issubclass(category, DEPRECATIONS):
        return False
    if any(klass.__name__ in HINT_CATEGORIES for klass in category.__mro__):
        return False
    return not any(hint in message for hint in DESIGN_HINTS)


class ConsoleLines(logging.Filter):
    """The console handler's filter: what a user reads while a run goes.

    Errors from anyone, from any rank. Otherwise rank 0 only: litpredict's lines, Python
    warnings that :func:`shows_warning` accepts, other libraries' warnings (Lightning's
    banners and tips are ``INFO``: the log file only).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        if not is_global_zero():
            return False
        if record.name == WARNINGS_LOGGER:
            category = getattr(record, "warning_category", None)
            message = str(getattr(record, "warning_message", record.getMessage()))
            return category is None or shows_warning(category, message)
        if record.name.split(".")[0] in OWN:
            return True
        return record.levelno >= logging.WARNING


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning``: one log record with the warning's category attached."""
    if file is not None:  # written to a file on purpose: as Python itself does
        file.write(warnings.formatwarning(message, category, filename, lineno, line))
        return
    logging.getLogger(WARNINGS_LOGGER).warning(
        "%s:%s: %s: %s",
        filename,
        lineno,
        category.__name__,
        message,
        extra={"warning_category": category, "warning_message": str(message)},
    )


def capture_warnings() -> None:
    """Python warnings become ``py.warnings`` records: once per place, as Python decides.

    Over ``logging.captureWarnings`` (which keeps Python's own ``showwarning`` for
    ``captureWarnings(False)``): the record carries the category, for :class:`ConsoleLines`,
    and is one line (no source line, no trailing newline).
    """
    logging.captureWarnings(True)
    warnings.showwarning = _show_warning


def is_console_handler(handler: logging.Handler) -> bool:
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
        if not isinstance(logger, logging.Logger) or name.split(".")[0] not in LIGHTNING:
            continue
        for handler in [h for h in logger.handlers if is_console_handler(h)]:
            logger.removeHandler(handler)
        logger.propagate = True


def route_to_log() -> None:
    """At the start of each job (single run or sweep), after Hydra configured its logging:
    Python warnings and Lightning's records go through the root's handlers only."""
    capture_warnings()
    _lightning_through_root()


# --- ddp_spawn workers ---------------------------------------------------------------------
# A spawned rank unpickles the Trainer in a fresh interpreter: no handler anywhere, so its
# records went to Lightning's own stderr handlers and Python's warnings to stderr (twice,
# once per rank). The parent's handlers travel with a callback (process/console_callbacks).


def logging_setup() -> dict[str, Any]:
    """This process's root handlers (files and console streams) and levels, as plain data."""
    handlers = []
    for handler in logging.getLogger().handlers:
        spec = {
            "level": handler.level,
            "formatter": handler.formatter,  # pickles (its class is imported by name)
            "filters": [f for f in handler.filters if isinstance(f, logging.Filter)],
        }
        if isinstance(handler, logging.FileHandler):
            handlers.append({**spec, "file": handler.baseFilename})
        elif is_console_handler(handler):
            stream = "stderr" if handler.stream is sys.stderr else "stdout"
            handlers.append({**spec, "stream": stream})
    levels = {
        name: logger.level
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger) and name.split(".")[0] in OWN and logger.level
    }
    return {"root": logging.getLogger().level, "levels": levels, "handlers": handlers}


def set_up_worker(setup: dict[str, Any]) -> None:
    """In a process without logging (a spawned rank): the parent's handlers, appending to
    the same log file, and :func:`route_to_log`. A no-op where the root has handlers."""
    root = logging.getLogger()
    if root.handlers or not setup.get("handlers"):
        return
    for spec in setup["handlers"]:
        if "file" in spec:
            handler: logging.Handler = logging.FileHandler(spec["file"], mode="a", delay=True)
        else:
            handler = logging.StreamHandler(getattr(sys, spec["stream"]))
        handler.setLevel(spec["level"])
        handler.setFormatter(spec["formatter"])
        for record_filter in spec["filters"]:
            handler.addFilter(record_filter)
        root.addHandler(handler)
    root.setLevel(setup["root"])
    for name, level in setup["levels"].items():
        logging.getLogger(name).setLevel(level)
    route_to_log()


# --- A prediction's two lines --------------------------------------------------------------


def _plural(count: int, noun: str) -> str:
    """``1 sample``, ``2 samples``, ``2 processes``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith('s') else 's'}"


def what_runs_line(
    model: str,
    checkpoint: str,
    datamodule: str,
    num_samples: int | None,
    device: str,
    world_size: int,
) -> str:
    """The line before predicting: model class, checkpoint, data, device and world size.

    ``predicting: LinearRegression from last.ckpt | RegressionDemo, 2048 samples | cpu, 1 process``
    """
    samples = _plural(num_samples, "sample") if num_samples is not None else "samples: unknown"
    return (
        f"predicting: {model} from {checkpoint} | {datamodule}, {samples} | "
        f"{device}, {_plural(world_size, 'process')}"
    )


STAGES_SHOWN_FROM_S = 5.0  # a predict loop at least this long says where its time went
STAGE_WORDS = {"data_s": "waiting for data", "model_s": "model", "write_s": "writing"}


def result_line(result: dict[str, Any], run_dir: Path | str) -> str:
    """``2048 predictions, mse=0.0201, mae=0.1136 -> outputs/predict/...``: the run's end.

    A resumed run says how many of them earlier attempts wrote (:func:`resumed_words`).

    With the manifest's ``stages`` and a loop of :data:`STAGES_SHOWN_FROM_S` or more, where
    its time went: ``..., mae=0.1136; 41.2 s: waiting for data 30.1 s, model 10.8 s,
    writing 0.3 s -> ...``.
    """
    metrics = result.get("metrics") or {}
    shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
    line = ", ".join([_plural(int(result["num_predictions"]), "prediction"), *shown])
    return line + resumed_words(result) + stages_words(result) + f" -> {run_dir}"


def resumed_words(result: dict[str, Any]) -> str:
    """``; 700 resumed from 1 earlier attempt``, or nothing for a run never stopped."""
    resume = result.get("resume") or {}
    reused, attempts = resume.get("reused"), resume.get("attempts")
    if not (isinstance(reused, int) and reused > 0 and isinstance(attempts, int)):
        return ""
    return f"; {reused} resumed from {_plural(attempts - 1, 'earlier attempt')}"


def stages_words(result: dict[str, Any]) -> str:
    """``; 41.2 s: waiting for data 30.1 s, model 10.8 s, writing 0.3 s``, or nothing for a
    short loop or a run without ``stages``."""
    stages = result.get("stages") or {}
    if not all(isinstance(stages.get(k), (int, float)) for k in STAGE_WORDS):
        return ""
    loop = sum(stages[k] for k in STAGE_WORDS)
    if loop < STAGES_SHOWN_FROM_S:
        return ""
    whole = result.get("duration_s")
    head = f"{whole:.1f} s" if isinstance(whole, (int, float)) else f"loop {loop:.1f} s"
    parts = [f"{words} {stages[k]:.1f} s" for k, words in STAGE_WORDS.items()]
    return f"; {head}: " + ", ".join(parts)
