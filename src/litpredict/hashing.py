"""Streamed file hashes: constant memory, whatever the size.

Outputs and checkpoints are hashed with SHA-256 (the manifest contract; ``sha256sum``
checks them). Input data is fingerprinted with XXH3-128 by default: it only has to tell
whether the data changed, and at ~14 GB/s here (SHA-256: 1.6 GB/s) it costs a small
fraction of a prediction pass over the same bytes instead of more than the pass itself.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
WINDOW = 16 << 20  # a multiple of every page size


def _xxh3_128() -> Any:
    import xxhash

    return xxhash.xxh3_128()


HASHES: dict[str, Callable[[], Any]] = {"xxh3_128": _xxh3_128, "sha256": hashlib.sha256}


def hash_file(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of ``path``'s bytes.

    The file is memory-mapped and hashed a 16 MiB window at a time, each window
    unmapped from this process once hashed: resident memory stays bounded, and the
    hash runs without the GIL for a whole window, so a run's other threads keep going.
    """
    digest = HASHES[algorithm]()
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            return digest.hexdigest()
        try:
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not mappable (a pipe, a special file): read it
            while block := file.read(CHUNK):
                digest.update(block)
            return digest.hexdigest()
    with mapped, memoryview(mapped) as view:
        for start in range(0, size, WINDOW):
            digest.update(view[start : start + WINDOW])
            if hasattr(mapped, "madvise"):
                length = min(WINDOW, size - start)
                mapped.madvise(mmap.MADV_DONTNEED, start, length)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    return hash_file(path, "sha256")
