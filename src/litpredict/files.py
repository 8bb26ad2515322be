"""Atomic file writes, the one way litpredict replaces a file another process may read.

A reader (a sweep summary, a resumed run, ``reproduce``) never sees half a file: data
goes to a temporary name in the same directory, then ``os.replace`` renames it over
the target. The temporary name is unique per process and call, so concurrent writers
(jobs of a parallel sweep) never share one.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON, written atomically."""
    return atomic_write(path, json.dumps(data, indent=2, default=str) + "\n")
