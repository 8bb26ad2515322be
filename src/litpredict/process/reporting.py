"""How an error ends a run: a short message on stderr and an exit code.

The traceback goes to the run's log file. In a multirun the error is re-raised instead,
so Hydra records the job as failed and the sweep goes on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from litpredict.process.errors import RunInterrupted, UserError, describe, user_error_in
from litpredict.process.job import Job

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def requeued_by_launcher(error: BaseException) -> bool:
    """Whether ``error`` is submitit's exit after it requeued the job (a time limit's signal,
    a preemption): ``sys.exit(-1)`` raised by its signal handler, wherever the job was.

    That exit must leave the process as it is: a job that returned, even as failed, writes
    the result submitit's launcher waits for, and the sweep would report the first attempt
    while the requeued job runs on.

    Also an interrupt raised while that exit was on its way out (SLURM's requeue sends
    SIGTERM; one that lands inside submitit's handler is ignored, ``signals.requeueing``),
    however deep: on a real SLURM requeue the SIGTERM landed in logging's ``except
    KeyError`` while Lightning tore down under the exit, so the interrupt's context was
    that KeyError and the exit its context.
    """
    if not isinstance(error, (SystemExit, RunInterrupted)):
        return False
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, SystemExit) and _raised_in_submitit(error):
            return True
        error = error.__context__
    return False


def _raised_in_submitit(error: BaseException) -> bool:
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    module = trace.tb_frame.f_globals.get("__name__", "") if trace is not None else ""
    return module == "submitit" or module.startswith("submitit.")


def run_reporting_errors(job: Job, body: Callable[[], T]) -> T:
    """Run ``body``; turn any error into a short stderr message and an exit code."""
    try:
        return body()
    except BaseException as error:
        if isinstance(error, SystemExit) and error.code in (0, None):
            raise
        if requeued_by_launcher(error):
            log.warning("stopped and requeued by the scheduler: the requeued job resumes")
            raise
        log.debug("traceback", exc_info=True)
        interrupted = isinstance(error, (RunInterrupted, KeyboardInterrupt))
        known = user_error_in(error)
        where = f" (details: {job.log_file})" if job.log_file else ""
        if interrupted:
            message, code = (
                f"interrupted{where}; run the same command again to complete it",
                EXIT_INTERRUPTED,
            )
        elif known is not None:
            message, code = f"{known.message}", EXIT_USAGE
        else:
            message, code = f"{describe(error)}{where}", EXIT_ERROR
        if job.multirun and not isinstance(error, KeyboardInterrupt):
            raise RuntimeError(message) from None
        print(f"litpredict: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(code) from None


def run_command(body: Callable[[], int]) -> int:
    """A command built around predict (ensemble, compare, average, reproduce): ``body()``
    with SIGINT and SIGTERM raising (:func:`~litpredict.process.signals.interrupts_raise`,
    as predict), so each writes its manifest's ``interrupted``; a UserError or an interrupt
    ends it as it ends predict: one message on stderr and predict's exit code, never a
    traceback. Other errors propagate."""
    from litpredict.process.signals import interrupts_raise

    try:
        with interrupts_raise():
            return body()
    except (RunInterrupted, KeyboardInterrupt):
        message, code = "interrupted; run the same command again to complete it", EXIT_INTERRUPTED
    except UserError as error:
        message, code = error.message, EXIT_USAGE
    print(f"litpredict: error: {message}", file=sys.stderr, flush=True)
    return code
