"""Python's cycle collector held off while a command starts up.

Importing torch, Lightning and Hydra, composing the config and building the model leave
~700k objects alive, and each full pass of CPython's collector walks every one of them:
on a short predict run (the LSTM, 10k sequences) start-up took 4.6-4.8 s with the
collector on, 3.4 s with it held off until the loop and run once there
(``docs/speed.md``, Start-up). So a command pauses it for start-up, and when the loop
begins (:func:`resume_collector`) collects once, so setup's garbage is freed and memory stays as it
was, then freezes the survivors (``gc.freeze``: no later pass walks them, and forked
loader workers keep sharing their pages) and switches the collector on again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside, unless :func:`resume_collector` switched it on; on again after.

    Leaving does not collect: a command ends right after, or its next job's
    :func:`resume_collector` collects what this one left.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def resume_collector() -> None:
    """Start-up is over: collect once, freeze what survives, switch the collector on.

    Nothing when the collector is already on (a library caller's process, a later job of
    a sweep): its objects are not ours to freeze.
    """
    if gc.isenabled():
        return
    gc.collect()
    gc.freeze()
    gc.enable()
