"""SIGINT and SIGTERM as an exception, so a run's status and cleanup code still run."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from litpredict.process.errors import RunInterrupted

_stopped_children: weakref.WeakSet = weakref.WeakSet()  # Process objects: a pid can be reused
_sigterm = threading.Event()


def stop_children() -> None:
    """SIGTERM to this process's spawned DDP workers, once each: each commits the batches
    it wrote and stops at its next batch (the interpreter's exit waits for them); without
    it they would keep writing shards. A second SIGTERM could land in a worker's exit."""
    for child in multiprocessing.active_children():
        if child not in _stopped_children:
            _stopped_children.add(child)
            child.terminate()


def flag_sigterm(signum: int, frame: Any) -> None:
    """A SIGTERM handler that only notes the signal (``spawned_ranks``)."""
    _sigterm.set()


def sigterm_flagged() -> bool:
    """Whether :func:`flag_sigterm` has seen a SIGTERM in this process."""
    return _sigterm.is_set()


# submitit's handler of a time limit's or a preemption's signal: it requeues the job
# (``scontrol requeue``), then exits; SLURM's requeue sends SIGTERM meanwhile.
REQUEUE_HANDLER = "checkpoint_and_try_requeue"


def requeueing(frame: Any) -> bool:
    """Whether ``frame`` (where a signal landed) is inside submitit's requeue handler."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if frame.f_code.co_name == REQUEUE_HANDLER and module.startswith("submitit"):
            return True
        frame = frame.f_back
    return False


def _raise_interrupt(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    stop_children()
    if signum == signal.SIGTERM and requeueing(frame):
        # The requeue's own SIGTERM: submitit's exit follows and tells the sweep the job
        # was requeued (``reporting.requeued_by_launcher``); an interrupt here would end
        # the job as interrupted, and the sweep would report it while it runs again.
        return
    raise RunInterrupted(name)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`RunInterrupted`, so status and cleanup code runs."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _raise_interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block ends, then arrive (main thread only).

    For steps that must happen together or not at all: the outputs' final renames and
    the manifest's ``complete``. The signal is caught and raised again at the end, not
    masked: a process-wide signal goes to any thread that does not mask it (hashing and
    fingerprint threads run beside the main one), and Python runs handlers in the main
    thread anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # now, to the handler the block held it from
