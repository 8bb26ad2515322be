"""The local cache of remote objects: content-addressed, fetched once per node, verified.

Layout under ``$LITPREDICT_CACHE`` (default ``~/.cache/litpredict``)::

    objects/<ab>/<sha256><suffixes>   the bytes, named by their SHA-256, read-only
    index/<sha256 of the URL>.json    URL -> {ETag|version: sha256, bytes, ...}
    locks/<sha256 of the URL>.lock    held while one process downloads that URL

A second run of an unchanged object (same ETag or version) downloads nothing: the index
names the file, and its bytes are hashed again before use (a cached copy that changed on
disk is fetched again). On one node, local rank 0 downloads; the other ranks wait for its
index entry, then for the lock, so each object is downloaded once per node whatever order
the ranks arrive in. Delete the cache at any time; nothing else refers into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from litpredict.process.errors import RemoteError
from litpredict.remote import urls
from litpredict.remote.objects import ObjectInfo, Store
from litpredict.remote.stores import store_for

CACHE_VARIABLE = "LITPREDICT_CACHE"
HEAD_START_S = 10.0  # how long another local rank leaves rank 0 to take the lock first
LOCK_TIMEOUT_S = 6 * 3600.0  # a download that holds a lock longer is taken for stuck
POLL_S = 0.1
VERSIONS_KEPT = 8  # index entries per URL
STALE_PART_S = 24 * 3600.0

log = logging.getLogger(__name__)
T = TypeVar("T")


def cache_dir() -> Path:
    """``$LITPREDICT_CACHE``, else ``$XDG_CACHE_HOME/litpredict``, else ``~/.cache/litpredict``."""
    explicit = os.environ.get(CACHE_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "litpredict"


@dataclass(frozen=True)
class Fetched:
    """A remote object's local copy in the cache, and what identifies it."""

    url: str
    path: Path
    sha256: str
    size: int
    etag: str | None = None
    version: str | None = None
    downloaded: bool = False  # by this call (else found in the cache)

    def record(self) -> dict[str, Any]:
        """How the manifest names it: the URL as typed, its SHA-256, ETag/version."""
        found = {"path": self.url, "sha256": self.sha256, "bytes": self.size}
        return found | ObjectInfo(self.url, self.size, self.etag, self.version).record()


def fetch(
    url: str,
    *,
    info: ObjectInfo | None = None,
    refresh: bool = False,
    first: bool | None = None,
    store: Store | None = None,
) -> Fetched:
    """The cached copy of ``url``, downloaded (once per node) unless the cache has it.

    ``info``: what a listing already said of the object (no HEAD request then).
    ``refresh``: download again whatever the index says (``reproduce`` checks the bytes).
    ``first``: whether to take the lock at once (default: on local rank 0 only).
    ``store``: the store to use (one for many objects of a folder), else a new one.
    """
    from litpredict.process.ranks import local_rank

    url = urls.checked_url(url)
    store = store or store_for(url)
    info = info or store.info(url)
    if info.version == "directory":
        raise RemoteError(
            f"{urls.redacted(url)} is a folder, not a file", "name one file (or use a glob)"
        )
    cache = cache_dir()

    def cached() -> Fetched | None:
        return None if refresh else _lookup(cache, url, info)

    def download() -> Fetched:
        return _download(cache, store, url, info)

    first = local_rank() == 0 if first is None else first
    return once_per_node(_lock_file(cache, url), cached, download, first=first)


def once_per_node(
    lock: Path, ready: Callable[[], T | None], make: Callable[[], T], *, first: bool
) -> T:
    """``ready()`` if it has a result, else ``make()`` under ``lock``, by one process.

    ``first`` (local rank 0) takes the lock at once; the others give it a head start of
    :data:`HEAD_START_S` (watching for its result), then wait on the lock themselves and
    look again before making anything: whoever arrives first, ``make`` runs once.
    """
    found = ready()
    if found is not None:
        return found
    if not first:
        deadline = time.monotonic() + HEAD_START_S
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            found = ready()
            if found is not None:
                return found
    with held(lock):
        found = ready()
        return found if found is not None else make()


@contextlib.contextmanager
def held(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock``, waited for (up to :data:`LOCK_TIMEOUT_S`)."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RemoteError(
                        f"another process has held {lock} for over {LOCK_TIMEOUT_S:g} s",
                        "end that process (or delete the lock file if none runs)",
                    ) from None
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _lock_file(cache: Path, url: str) -> Path:
    return cache / "locks" / f"{_key(url)}.lock"


def _index_file(cache: Path, url: str) -> Path:
    return cache / "index" / f"{_key(url)}.json"


def object_path(cache: Path, sha256: str, suffixes: str = "") -> Path:
    return cache / "objects" / sha256[:2] / f"{sha256}{suffixes}"


def _read_index(cache: Path, url: str) -> dict[str, Any]:
    try:
        data = json.loads(_index_file(cache, url).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("versions", {}) if data.get("url") == url else {}


def _lookup(cache: Path, url: str, info: ObjectInfo) -> Fetched | None:
    """The cached copy of this very object (same ETag/version), its bytes verified; else None."""
    if info.tag is None:
        return None  # nothing tells an unchanged object from a changed one
    entry = _read_index(cache, url).get(info.tag)
    if not entry:
        return None
    path = object_path(cache, entry["sha256"], urls.suffixes(url))
    try:
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            log.warning("the cached copy of %s changed on disk: fetching it again", url)
            path.unlink(missing_ok=True)
            return None
    except OSError:
        return None
    return Fetched(url, path, entry["sha256"], entry["bytes"], info.etag, info.version)


def _download(cache: Path, store: Store, url: str, info: ObjectInfo) -> Fetched:
    """One download into the cache: to a temporary file, size checked, hashed, renamed."""
    staging = cache / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    _clear_stale(staging)
    temporary = staging / f"{os.getpid()}.{secrets.token_hex(4)}.part"
    started = time.monotonic()
    try:
        store.download(url, temporary, info)
        size = temporary.stat().st_size
        if info.size is not None and size != info.size:
            raise RemoteError(
                f"{urls.redacted(url)} arrived incomplete ({size} of {info.size} bytes)",
                "run the same command again",
            )
        digest = _sha256(temporary)
        path = object_path(cache, digest, urls.suffixes(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size == size:
            temporary.unlink()  # the same bytes under another URL or version
        else:
            temporary.chmod(0o444)
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _remember(cache, url, info, digest, size)
    log.info(
        "fetched %s (%d bytes, sha256 %s) in %.1f s", urls.redacted(url), size, digest[:12],
        time.monotonic() - started,
    )  # fmt: skip
    return Fetched(url, path, digest, size, info.etag, info.version, downloaded=True)


def _clear_stale(staging: Path) -> None:
    """Remove downloads a killed process left behind (a day old: none still running)."""
    now = time.time()
    for part in staging.glob("*.part"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()


def _remember(cache: Path, url: str, info: ObjectInfo, digest: str, size: int) -> None:
    """Add ``info``'s tag -> ``digest`` to the URL's index (called under the URL's lock)."""
    from litpredict.rundir.files import write_json

    if info.tag is None:
        return
    versions = _read_index(cache, url)
    versions.pop(info.tag, None)
    versions[info.tag] = {
        "sha256": digest,
        "bytes": size,
        **info.record(),
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    kept = dict(list(versions.items())[-VERSIONS_KEPT:])
    index = _index_file(cache, url)
    index.parent.mkdir(parents=True, exist_ok=True)
    write_json(index, {"url": url, "versions": kept})


def _sha256(path: Path) -> str:
    from litpredict.rundir.hashing import sha256_file

    return sha256_file(path)
