"""Whether a run may use a directory, and holding it while it does.

- :func:`foreign_files`: files no litpredict manifest lists (a user's own folder passed as
  ``hydra.run.dir``) make the directory unusable; litpredict never writes over them.
- :class:`RunLock`: an ``fcntl`` lock on ``.litpredict.lock`` while a run uses the
  directory; a second run into it stops at once, naming the first (pid, host, command).
- :func:`differences`: what makes a complete run there another run than this one (the
  checkpoint, the resolved config less the paths naming the run directory, the data).
- :func:`clear_leftovers`: a failed run's staging files, and its shards unless the next
  run reuses them (``litpredict.writing.resume``), removed at the start of the next run so
  that, once there is space again, the same command completes.
- :func:`remember_hydra_files` / :func:`restore_hydra_files`: Hydra rewrites ``.hydra/``
  before any job callback or task runs; a run that does nothing puts it back as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litpredict.process.errors import UserError
from litpredict.rundir.manifest import (
    COMPLETE,
    FAILED,
    FILENAME,
    INTERRUPTED,
    RUNNING,
    read_manifest,
)

LOCK = ".litpredict.lock"
HYDRA = ".hydra"
SHARDS = ".shards"  # litpredict.writing.shards.SHARDS (not imported: it pulls in numpy)
STAGING = ".staging"  # litpredict.writing.finalize.STAGING
JOB_ERROR = "job_error.json"  # litpredict.sweep.summary.JOB_ERROR
# Top-level entries that are Hydra's or litpredict's own, whatever a manifest lists.
OWN_DIRS = {HYDRA, SHARDS, STAGING}
OWN_FILES = {FILENAME, LOCK, JOB_ERROR}  # and .*.tmp: atomic writes, the write probe
# Names the writer gives outputs; a run that stopped before ``complete`` may leave them.
OUTPUT_NAMES = ("predictions", "ids.txt")
# Resolved config keys that do not change what a run writes: a terminal or not, where
# runs go by default (an explicit hydra.run.dir does not depend on it), how often a run
# commits what it wrote (``resume.*``).
IGNORED_KEYS = {"trainer.enable_progress_bar", "paths.root"}
IGNORED_PREFIXES = ("resume.",)
RUN_DIR_MARK = "<run_dir>"


class RunDirError(UserError):
    """The run directory is someone else's, in use, or holds another complete run."""


def _is_own(relative: Path, listed: set[str], unfinished_run: bool) -> bool:
    top = relative.parts[0]
    if top in OWN_DIRS or str(relative) in listed:
        return True
    if len(relative.parts) == 1 and (
        top in OWN_FILES or top.endswith(".log") or (top.startswith(".") and top.endswith(".tmp"))
    ):
        return True
    return unfinished_run and top.startswith(OUTPUT_NAMES)


def foreign_files(run_dir: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` files in ``run_dir`` that are neither Hydra's, litpredict's own,
    nor outputs its manifest lists (relative paths)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    manifest = read_manifest(run_dir) or {}
    is_ours = manifest.get("status") in (RUNNING, COMPLETE, FAILED, INTERRUPTED)
    listed = {str(o.get("path")) for o in manifest.get("outputs") or []} if is_ours else set()
    found = []
    for folder, dirs, files in os.walk(run_dir):
        base = Path(folder).relative_to(run_dir)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d not in OWN_DIRS]
        for name in sorted(files):
            relative = base / name if base != Path(".") else Path(name)
            if not _is_own(relative, listed, is_ours):
                found.append(str(relative))
                if len(found) >= limit:
                    return found
    return found


def refuse_foreign(run_dir: Path) -> None:
    """Stop before a run writes into a folder holding files that are not litpredict's."""
    found = foreign_files(run_dir)
    if found:
        raise RunDirError(
            f"{run_dir} holds files that no litpredict manifest lists ({', '.join(found)}"
            f"{', ...' if len(found) == 3 else ''}); litpredict never writes over them",
            "pass hydra.run.dir=NEW (a new or empty directory, or a litpredict run directory)",
        )


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
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def comparable_config(
    config: dict[str, Any], run_dir: str, ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``config`` flattened to ``{dotted key: value}``, the run directory as a mark, less
    :data:`IGNORED_KEYS` and ``ignored``."""
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, str) and run_dir and value.startswith(run_dir):
            flat[key] = RUN_DIR_MARK + value[len(run_dir) :]
        else:
            flat[key] = value

    walk(config, "")
    skip = IGNORED_KEYS | set(ignored)
    return {k: v for k, v in flat.items() if k not in skip and not k.startswith(IGNORED_PREFIXES)}


def config_changes(
    before: dict[str, Any], after: dict[str, Any], after_dir: Path, ignored: tuple[str, ...] = ()
) -> list[str]:
    """The resolved-config keys whose values differ between a manifest and this run."""
    old_dir = str(((before.get("paths") or {}).get("run_dir")) or "")
    old = comparable_config(before, old_dir, ignored)
    new = comparable_config(after, str(after_dir), ignored)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


def data_changes(manifest: dict[str, Any]) -> list[str]:
    """The input files whose fingerprint differs from the one the manifest recorded."""
    from litpredict.rundir.provenance import algorithm_of, content_of, data_fingerprint

    changes = []
    for before in manifest.get("data") or []:
        path = Path(before["path"])
        if not path.exists():
            changes.append(f"data {path} is gone")
            continue
        [after] = data_fingerprint([path], algorithm_of(before))
        if content_of(before) != content_of(after):
            changes.append(f"data {path} changed")
    return changes


def differences(
    manifest: dict[str, Any],
    config: dict[str, Any],
    run_dir: Path,
    checkpoint_sha256: str,
    ignored: tuple[str, ...] = (),
) -> list[str]:
    """Why the run in ``manifest`` is not this run (empty: it is this run); config keys in
    ``ignored`` may differ (a resumed run may have another number of ranks)."""
    changes = []
    if (manifest.get("checkpoint") or {}).get("sha256") != checkpoint_sha256:
        changes.append("another checkpoint")
    changed = config_changes(manifest.get("config") or {}, config, run_dir, ignored)
    if changed:
        changes.append("another config (" + "; ".join(changed[:3]))
        changes[-1] += f"; +{len(changed) - 3} more)" if len(changed) > 3 else ")"
    return changes + data_changes(manifest)


def clear_leftovers(run_dir: Path, keep_shards: bool = False) -> None:
    """Remove a failed or interrupted run's shards (unless ``keep_shards``: a resumed run
    reuses them), staging folder and temporary files."""
    run_dir = Path(run_dir)
    for name in (STAGING,) if keep_shards else (SHARDS, STAGING):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for temporary in run_dir.glob(".*.tmp"):
        temporary.unlink(missing_ok=True)


_remembered: dict[Path, dict[str, bytes] | None] = {}


def remember_hydra_files(run_dir: Path) -> None:
    """Keep ``run_dir/.hydra``'s files (None: there was none) before Hydra rewrites them."""
    folder = Path(run_dir).absolute() / HYDRA
    files = {p.name: p.read_bytes() for p in folder.glob("*") if p.is_file()}
    _remembered[folder] = files if folder.is_dir() else None


def restore_hydra_files(run_dir: Path) -> None:
    """Put ``.hydra/`` back as :func:`remember_hydra_files` found it (for a run that did
    nothing); a no-op for a directory not remembered (in-process runs, sweep jobs)."""
    folder = Path(run_dir).absolute() / HYDRA
    if folder not in _remembered:
        return
    files = _remembered.pop(folder)
    if files is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    from litpredict.rundir.files import atomic_write

    for stale in folder.glob("*"):
        if stale.is_file() and stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        atomic_write(folder / name, data)
