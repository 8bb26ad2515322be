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

# epoch=3-step=100 (Lightning's default), epoch_003 (lightning-hydra-template)
_EPOCH = re.compile(r"epoch[=_](\d+)")
_STEP = re.compile(r"step[=_](\d+)")
_REFERENCE = re.compile(r"\$\{([^{}]+)\}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class FileGlobError(CompactHydraException):
    """A file glob that cannot be expanded; Hydra prints only the message."""


def name_progress(name: str) -> tuple[int | None, int | None]:
    """``(epoch, step)`` as a file name spells them, ``None`` where it does not."""
    epoch, step = _EPOCH.search(name), _STEP.search(name)
    return (int(epoch.group(1)) if epoch else None, int(step.group(1)) if step else None)


def _is_url(path: str) -> bool:
    return bool(_URL.match(str(path)))


def remote_progress(urls: Iterable[str]) -> dict[str, tuple[int | None, int | None]]:
    """``{url: (epoch, step)}`` of remote checkpoints, each read from its zip directory and
    the start of its ``data.pkl`` through ranged reads (a few small requests, never the
    whole file; one client per protocol); unknown on any failure."""
    from litpredict.checkpoint.progress import UNKNOWN, read_progress
    from litpredict.remote.fsspec_store import FsspecStore

    stores: dict[str, Any] = {}
    found = {}
    for url in urls:
        try:
            protocol = url.partition("://")[0]
            store = stores.get(protocol) or stores.setdefault(protocol, FsspecStore(url))
            with store.open(url) as file:
                found[url] = read_progress(file)
        except Exception:
            found[url] = UNKNOWN
    return found


def checkpoint_sort_key(
    path: str, progress: tuple[int | None, int | None] | None = None
) -> tuple[Any, ...]:
    """Training order: by folder (the run), then by the (epoch, global_step) the file holds.

    Names do not say it everywhere (``epoch_003.ckpt``, ``last.ckpt``), so the numbers are
    read from the checkpoint (nothing unpickled; a URL's are given as ``progress``, read
    by :func:`remote_progress`), else from ``epoch=E``/``step=S``/``epoch_E``
    in the name. At equal numbers a ``last*.ckpt`` comes after the named checkpoint it
    repeats. Files without numbers come after, ``last*`` first, then by name. Job numbers
    follow this order, so a re-run after more epochs keeps the old job folders.
    """
    from litpredict.checkpoint.progress import read_progress  # stdlib only, no torch

    p = Path(path)
    folder = path.rpartition("/")[0] if _is_url(path) else str(p.parent)
    if progress is None:
        progress = read_progress(p) if not _is_url(path) else (None, None)
    epoch, step = progress
    if epoch is None and step is None:
        epoch, step = name_progress(p.name)
    last = p.stem == "last" or p.stem.startswith("last-")
    if epoch is None and step is None:
        return (folder, 1, -1, -1, not last, p.name)
    numbers = (-1 if epoch is None else epoch, -1 if step is None else step)
    return (folder, 0, *numbers, last, p.name)


def run_of(path: str) -> Path:
    """The training run a checkpoint belongs to: the folder above ``checkpoints/``
    (Lightning's, LHT's and ``litpredict.train``'s layout), else the file's own folder."""
    folder = Path(path).parent
    return folder.parent if folder.name == "checkpoints" and folder.parent != folder else folder


def run_labels(paths: Iterable[str]) -> dict[str, str]:
    """Each path's run as a short name, when the paths come from several runs; else ``{}``.

    The name is the run folder's, or as many folders up as it takes to tell two runs
    apart (``a_seed=1`` and ``b_seed=1``).
    """
    runs = {path: run_of(path) for path in paths}
    distinct = set(runs.values())
    if len(distinct) < 2:
        return {}
    names = {run: "_".join(_distinct_tail(run, distinct)) for run in distinct}
    return {path: names[run] for path, run in runs.items()}


def _distinct_tail(run: Path, runs: set[Path]) -> tuple[str, ...]:
    parts = run.parts[1:] if run.anchor else run.parts
    others = [o.parts[1:] if o.anchor else o.parts for o in runs if o != run]
    for count in range(1, len(parts) + 1):
        tail = parts[-count:]
        if all(other[-count:] != tail for other in others):
            return tail
    return parts


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    """``exclude=`` patterns match the file name or the whole path (``last.ckpt``, ``*/run2/*``)."""
    candidates = (os.path.basename(path), path)
    return any(fnmatch.fnmatch(c, p) for p in patterns for c in candidates)


def expand(include: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """Absolute paths of files matching any ``include`` and no ``exclude``, in training order.

    A URL pattern (``s3://bucket/run/checkpoints/*.ckpt``) is listed by its store: the
    matching objects' URLs, ordered by the epoch and step each holds (read in a few small
    ranged requests) or else by name, as local files are.

    One path per local file: a ``**`` glob through a symlink loop (``ckpts/loop -> ..``) or
    a link beside its target matches one file under many names, and each would be a job.
    The file keeps its own name where the glob matched it (a link's target over the link,
    e.g. Lightning's ``save_last="link"``), else its shortest matching name.
    """
    exclude = [str(p) if _is_url(str(p)) else os.path.expanduser(str(p)) for p in exclude]
    found: dict[str, str] = {}  # real path (or URL) -> the name the job gets
    for pattern in include:
        if _is_url(str(pattern)):
            found.update((u, u) for u in _remote_glob(str(pattern)) if not _excluded(u, exclude))
            continue
        for match in glob.glob(os.path.expanduser(str(pattern)), recursive=True):
            path = os.path.abspath(match)
            if os.path.isfile(path) and not _excluded(path, exclude):
                real = os.path.realpath(path)
                if real not in found or _preferred(path, real) < _preferred(found[real], real):
                    found[real] = path
    names = list(found.values())
    remote = remote_progress(p for p in names if _is_url(p))
    return sorted(names, key=lambda path: checkpoint_sort_key(path, remote.get(path)))


def _preferred(path: str, real: str) -> tuple[bool, int, str]:
    return (path != real, len(path), path)


def _remote_glob(pattern: str) -> list[str]:
    """The URLs a store lists for ``pattern``; its errors (a missing bucket or credential)
    as Hydra prints them: the message alone."""
    from litpredict.process.errors import UserError
    from litpredict.remote.stores import store_for
    from litpredict.remote.urls import checked_url

    try:
        return store_for(pattern).glob(checked_url(pattern, "glob()"))
    except UserError as error:
        raise FileGlobError(f"glob({pattern}): {error.message}") from None


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
