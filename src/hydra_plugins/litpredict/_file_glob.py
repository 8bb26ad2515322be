"""File globs for sweeps: expand, order like training produced them, quote for Hydra's parser.

Hydra does not scan modules whose name starts with ``_``; this one is imported by the sweeper.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override, Quote, QuotedString
from hydra.errors import CompactHydraException

_EPOCH = re.compile(r"epoch=(\d+)")
_STEP = re.compile(r"step=(\d+)")
_REFERENCE = re.compile(r"\$\{([^{}]+)\}")


class FileGlobError(CompactHydraException):
    """A file glob that cannot be expanded; Hydra prints only the message."""


def checkpoint_sort_key(path: str) -> tuple[Any, ...]:
    """Training order: by folder, then ``epoch=E-step=S`` by (E, S), then ``last*.ckpt``, then name.

    Job numbers follow this order, so a re-run after more epochs keeps the old job folders.
    """
    p = Path(path)
    epoch, step = _EPOCH.search(p.name), _STEP.search(p.name)
    if epoch or step:
        rank = 0
    elif p.stem == "last" or p.stem.startswith("last-"):
        rank = 1
    else:
        rank = 2
    numbers = (int(epoch.group(1)) if epoch else -1, int(step.group(1)) if step else -1)
    return (str(p.parent), rank, *numbers, p.name)


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    """``exclude=`` patterns match the file name or the whole path (``last.ckpt``, ``*/run2/*``)."""
    candidates = (os.path.basename(path), path)
    return any(fnmatch.fnmatch(c, p) for p in patterns for c in candidates)


def expand(include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Absolute paths of files matching any ``include`` and no ``exclude``, in training order."""
    exclude = [os.path.expanduser(str(p)) for p in exclude]
    found: set[str] = set()
    for pattern in include:
        for match in glob.glob(os.path.expanduser(str(pattern)), recursive=True):
            path = os.path.abspath(match)
            if os.path.isfile(path) and not _excluded(path, exclude):
                found.add(path)
    return sorted(found, key=checkpoint_sort_key)


def references(patterns: Iterable[str]) -> list[str]:
    """The keys a pattern refers to as ``${key}`` (a glob that depends on another override)."""
    return [m.group(1).strip() for p in patterns for m in _REFERENCE.finditer(str(p))]


def substitute(pattern: str, values: Mapping[str, Any]) -> str:
    """``runs/${experiment}/*.ckpt`` with the job's ``experiment`` value filled in."""

    def value(match: re.Match) -> str:
        key = match.group(1).strip()
        if key not in values:
            raise FileGlobError(
                f"glob pattern {pattern!r} refers to ${{{key}}}, which is not set on the command "
                f"line; set {key}=... before the glob, or write the path out"
            )
        return str(values[key])

    return _REFERENCE.sub(value, str(pattern))


def quote(path: str) -> str:
    r"""``"path"`` as Hydra and OmegaConf read it back exactly.

    Quoting keeps ``=``, ``,``, spaces, brackets and quotes; ``\${`` keeps a literal ``${``
    from being taken for an interpolation.
    """
    text = path.replace("${", "\\${")
    return QuotedString(text=text, quote=Quote.double).with_quotes()


def plain(value: Any) -> Any:
    """A parsed override value without Hydra's quoting wrapper."""
    return Override._convert_value(value)
