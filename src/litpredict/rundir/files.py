"""Atomic file writes, the one way litpredict replaces a file another process may read.

A reader (a sweep summary, a resumed run, ``reproduce``) never sees half a file: data
goes to a temporary name in the same directory, then ``os.replace`` renames it over
the target. The temporary name is unique per process and call, so concurrent writers
(jobs of a parallel sweep) never share one.
"""

from __future__ import annotations

import json
import math
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


def strict_json(data: Any) -> Any:
    """``data`` with NaN and infinities as None: JSON has no such numbers.

    Python's ``json`` writes them as bare ``NaN``/``Infinity``, which strict readers
    (``jq``, browsers, most languages) refuse.
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    if hasattr(data, "item") and getattr(data, "ndim", None) == 0:  # numpy/torch scalar
        return strict_json(data.item())
    return data


class _NotPlainJSON(Exception):
    """An object JSON has no type for: take the slow, converting path."""


def _not_plain(value: Any) -> Any:
    raise _NotPlainJSON


def json_text(data: Any, indent: int | None = 2) -> str:
    """``data`` as strict JSON: non-finite numbers as null, numpy/torch scalars as numbers.

    Plain, finite data is encoded as it is (``indent=None`` by the C encoder); only data
    that needs it is walked by :func:`strict_json` first.
    """
    try:
        return json.dumps(data, indent=indent, default=_not_plain, allow_nan=False)
    except (ValueError, _NotPlainJSON):  # NaN, infinity or a non-JSON object somewhere
        return json.dumps(strict_json(data), indent=indent, default=str, allow_nan=False)


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """``data`` as strict JSON (:func:`json_text`), written atomically."""
    return atomic_write(path, json_text(data, indent) + "\n")
