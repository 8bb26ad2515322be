"""SIGINT and SIGTERM as an exception, so a run's status and cleanup code still run."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from typing import Any

from litpredict.errors import RunInterrupted


def _raise_interrupt(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    # Spawned DDP workers are ours to stop; they would otherwise keep writing shards.
    for child in multiprocessing.active_children():
        child.terminate()
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
