"""What ran, where, on what: versions, git state, host, command, input fingerprints."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from litpredict.hashing import sha256_file

# Inputs larger than this are fingerprinted by size, mtime and a hash of their first
# and last MiB instead of a full hash (documented in the README).
FULL_HASH_LIMIT = 2 << 30
DIRECTORY_FILE_LIMIT = 100_000


def versions() -> dict[str, str | None]:
    names = {
        "torch": "torch",
        "pytorch_lightning": "pytorch-lightning",
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
            found[key] = None
    return found


def git_state(directory: Path | None = None) -> dict[str, Any] | None:
    """``{commit, dirty}`` of the git checkout holding ``directory`` (default: cwd)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=directory or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "command": [sys.executable, *sys.argv],
    }


def _quick_hash(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as file:
        digest.update(file.read(1 << 20))
        file.seek(max(0, size - (1 << 20)))
        digest.update(file.read(1 << 20))
    digest.update(str(size).encode())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    entry: dict[str, Any] = {
        "path": str(path.resolve()),
        "bytes": stat.st_size,
        "mtime": stat.st_mtime,
    }
    if stat.st_size <= FULL_HASH_LIMIT:
        entry["sha256"] = sha256_file(path)
    else:
        entry["quick_sha256"] = _quick_hash(path)
    return entry


def data_fingerprint(paths: list[Path]) -> list[dict[str, Any]]:
    """Fingerprints of the files a datamodule reads; a directory lists its files."""
    entries = []
    for path in paths:
        path = Path(path).expanduser()
        if path.is_file():
            entries.append(file_fingerprint(path))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())[:DIRECTORY_FILE_LIMIT]
            import hashlib

            digest = hashlib.sha256()
            for file in files:
                digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
            entries.append(
                {"path": str(path.resolve()), "files": len(files), "sha256": digest.hexdigest()}
            )
        else:
            entries.append({"path": str(path), "missing": True})
    return entries


def content_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The parts of a fingerprint that change with the content (not the mtime)."""
    return {k: entry.get(k) for k in ("sha256", "quick_sha256", "bytes", "files", "missing")}
