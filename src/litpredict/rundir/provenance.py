"""What ran, where, on what: versions, git state, host, command, input fingerprints."""

from __future__ import annotations

import functools
import logging
import os
import platform
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from litpredict.rundir.hashing import HASHES, hash_file

# Inputs larger than this are fingerprinted by size, mtime and a hash of their first
# and last MiB instead of a full hash (documented in the README).
FULL_HASH_LIMIT = 2 << 30
DATA_HASH = "xxh3_128"  # the default; ``data_hash=sha256`` for sha256sum-checkable entries
DIRECTORY_FILE_LIMIT = 100_000


OPTIONAL = frozenset({"lightning"})  # left out of ``versions`` when not installed


def versions() -> dict[str, str | None]:
    """The versions this process runs (a copy: the manifest may be edited by its caller)."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str | None]:
    """Read once a process: packages loaded into it do not change under a sweep's jobs."""
    names = {
        "torch": "torch",
        "pytorch_lightning": "pytorch-lightning",
        "lightning": "lightning",  # the unified package, recorded only when installed
        "hydra": "hydra-core",
        "omegaconf": "omegaconf",
        "numpy": "numpy",
        "litpredict": "litpredict",
    }
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in names.items():
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if key not in OPTIONAL:
                found[key] = None
    return found


def git_state(directory: Path | None = None) -> dict[str, Any] | None:
    """``{commit, dirty}`` of the git checkout holding ``directory`` (default: cwd).

    One ``git status`` (porcelain v2 names the commit too): it runs in every sweep job.
    """
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=directory or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    commit = next((line.split()[2] for line in status if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # not a checkout, or no commit yet
        return None
    return {"commit": commit, "dirty": any(not line.startswith("#") for line in status)}


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "command": [sys.executable, *sys.argv],
    }


def _quick_hash(path: Path, algorithm: str) -> str:
    digest = HASHES[algorithm]()
    size = path.stat().st_size
    with path.open("rb") as file:
        digest.update(file.read(1 << 20))
        file.seek(max(0, size - (1 << 20)))
        digest.update(file.read(1 << 20))
    digest.update(str(size).encode())
    return digest.hexdigest()


def checked_data_hash(algorithm: str) -> str:
    """``algorithm`` if litpredict can fingerprint data with it, else a UserError."""
    if algorithm not in HASHES:
        from litpredict.process.errors import UserError

        raise UserError(
            f"unknown data_hash {algorithm!r}",
            f"set data_hash to one of {', '.join(sorted(HASHES))}",
        )
    return algorithm


def file_fingerprint(path: Path, algorithm: str = DATA_HASH) -> dict[str, Any]:
    stat = path.stat()
    entry: dict[str, Any] = {
        "path": str(path.resolve()),
        "bytes": stat.st_size,
        "mtime": stat.st_mtime,
    }
    if stat.st_size <= FULL_HASH_LIMIT:
        entry[algorithm] = hash_file(path, algorithm, mapped=True)
    else:
        entry[f"quick_{algorithm}"] = _quick_hash(path, algorithm)
    return entry


def data_fingerprint(paths: list[Path], algorithm: str = DATA_HASH) -> list[dict[str, Any]]:
    """Fingerprints of the files a datamodule reads; a directory lists its files."""
    checked_data_hash(algorithm)
    entries = []
    for path in paths:
        path = Path(path).expanduser()
        if path.is_file():
            entries.append(file_fingerprint(path, algorithm))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())[:DIRECTORY_FILE_LIMIT]
            digest = HASHES[algorithm]()
            for file in files:
                digest.update(f"{file.relative_to(path)}\0{hash_file(file, algorithm)}\n".encode())
            entries.append(
                {"path": str(path.resolve()), "files": len(files), algorithm: digest.hexdigest()}
            )
        else:
            entries.append({"path": str(path), "missing": True})
    return entries


class BackgroundFingerprint:
    """Fingerprints a run's inputs on a daemon thread; :meth:`result` waits for it.

    Started before the checkpoint is read, the hash records the data as the run found it,
    and on a second core it overlaps checkpoint loading and Lightning's set-up instead of
    adding to the run. A daemon thread never delays the exit of a run that failed.
    ``on_done`` gets the entries on that thread as soon as they are known: a run that may
    be resumed records them with its committed predictions.
    """

    def __init__(
        self,
        paths: list[Path],
        algorithm: str = DATA_HASH,
        on_done: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        HASHES[checked_data_hash(algorithm)]()  # imports the hash module on this thread
        self._entries: list[dict[str, Any]] | None = None
        self._error: BaseException | None = None
        self._on_done = on_done
        self._thread = threading.Thread(
            target=self._run, args=(list(paths), algorithm), name="fingerprint", daemon=True
        )
        self._thread.start()

    def _run(self, paths: list[Path], algorithm: str) -> None:
        try:
            self._entries = data_fingerprint(paths, algorithm)
        except BaseException as error:  # re-raised on the caller's thread by result()
            self._error = error
            return
        if self._on_done is not None:
            try:
                self._on_done(self._entries)
            except Exception as error:  # a record that cannot be written: the run goes on
                logging.getLogger(__name__).warning("could not record the data: %s", error)

    def result(self) -> list[dict[str, Any]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._entries or []


def algorithm_of(entry: dict[str, Any]) -> str:
    """The hash a recorded fingerprint used (manifests before XXH3 used SHA-256)."""
    return next((a for a in HASHES if a in entry or f"quick_{a}" in entry), DATA_HASH)


def content_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The parts of a fingerprint that change with the content (not the mtime)."""
    keys = [*HASHES, *(f"quick_{a}" for a in HASHES), "bytes", "files", "missing"]
    return {k: entry.get(k) for k in keys}
