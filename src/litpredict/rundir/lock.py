"""One run at a time in a directory: an ``fcntl`` lock on ``.litpredict.lock``.

- :class:`RunLock`: held while a run uses the directory; a second run into it stops at
  once, naming the first (pid, host, command). The kernel drops it when the process ends.
- :func:`lock_is_held`: whether a run holds it now, without taking it (a sweep's summary
  tells a killed run from a running one by it).
- :func:`locked_run_dir`: the directory held for a block, by rank 0 of a launch.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from litpredict.process.errors import RunDirError

LOCK = ".litpredict.lock"


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``run_dir/.litpredict.lock``, held until
    :meth:`release` (which removes the file) or the process ends (the kernel drops the
    lock then; a file left behind is simply locked again by the next run)."""

    _held: dict[Path, RunLock] = {}  # per process: a lock taken early is taken once

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir = run_dir
        self._fd = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        run_dir = Path(run_dir).absolute()
        if run_dir in cls._held:
            return cls._held[run_dir]
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_exclusive(fd)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RunDirError(
                    f"{run_dir} is in use by another run ({holder})",
                    "wait for that run to end, or pass hydra.run.dir=NEW",
                ) from None
            if _same_file(fd, path):
                break
            os.close(fd)  # the holder removed it as we opened it: lock the new file
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        lock = cls._held[run_dir] = cls(run_dir, fd)
        return lock

    def release(self) -> None:
        if self._held.get(self.run_dir) is self:
            del self._held[self.run_dir]
            (self.run_dir / LOCK).unlink(missing_ok=True)  # while still holding it
            os.close(self._fd)


PROBE_RETRIES = 5  # a summary's lock_is_held probe holds a lock for microseconds


def _lock_exclusive(fd: int) -> None:
    """``flock(LOCK_EX | LOCK_NB)``, tried again briefly: a summary rebuild probing the
    directory (:func:`lock_is_held`) must not pass for a run using it."""
    for attempt in range(PROBE_RETRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == PROBE_RETRIES - 1:
                raise
            time.sleep(0.02)


def lock_is_held(run_dir: Path) -> bool | None:
    """Whether a run holds ``run_dir``'s :class:`RunLock` now (this process's included);
    None when the filesystem cannot say (no ``flock`` support).

    Probes with a non-blocking shared lock, released at once: a run's exclusive lock makes
    it fail; nothing is created or written. A run's lock dies with its process, so a
    manifest that says ``running`` under a free lock is a run that was killed or crashed.
    """
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False  # a run holds the file while it runs and removes it when it ends
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the probe's lock
    return False


@contextlib.contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[None]:
    """``run_dir`` held by :class:`RunLock` for the block, by rank 0: the other ranks of a
    launch work in rank 0's directory under its lock."""
    from litpredict.process.ranks import is_global_zero

    lock = RunLock.acquire(run_dir) if is_global_zero() else None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _holder(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
    except (OSError, ValueError):
        record = {}
    if not record:
        return "its pid is not recorded yet"
    return f"pid {record.get('pid')} on {record.get('host')}: {record.get('command')}"


def _command(limit: int = 300) -> str:
    """This process's command line, on one line, cut to ``limit`` characters."""
    command = " ".join(shlex.join([Path(sys.executable).name, *sys.argv]).split())
    return command if len(command) <= limit else command[: limit - 3] + "..."
