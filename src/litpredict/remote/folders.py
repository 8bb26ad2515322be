"""A remote folder (``s3://bucket/images/``) as a local folder: for image folders.

Every object under the prefix is fetched into the content-addressed cache (several at a
time, each once per node), then a tree of symbolic links with the objects' relative paths
is built beside them: ``trees/<key>/cat/001.png -> objects/ab/ab....png``. The key is
the listing (names, ETags, sizes), so an unchanged folder is a cache hit after one LIST.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from litpredict.process.errors import RemoteError, RemoteNotFound
from litpredict.remote import urls
from litpredict.remote.cache import cache_dir, fetch, once_per_node
from litpredict.remote.objects import ObjectInfo
from litpredict.remote.stores import each, store_for

TREE_RECORD = ".litpredict-tree.json"


@dataclass(frozen=True)
class Mirror:
    """A remote folder's local tree and what it holds: ``(relative path, sha256, bytes)``."""

    url: str
    root: Path
    files: list[tuple[str, str, int]]

    def record(self) -> dict[str, Any]:
        """The data fingerprint of the folder: its files' names and SHA-256s together."""
        digest = hashlib.sha256()
        for relative, sha256, _ in self.files:
            digest.update(f"{relative}\0{sha256}\n".encode())
        return {
            "path": self.url,
            "files": len(self.files),
            "bytes": sum(size for _, _, size in self.files),
            "sha256": digest.hexdigest(),
        }

    def url_of(self, local: str | os.PathLike[str]) -> str:
        """The URL of a file of the tree (sample ids name the objects, not the cache)."""
        return urls.join(self.url, Path(local).relative_to(self.root).as_posix())


def mirror(url: str, suffixes: Iterable[str] | None = None, refresh: bool = False) -> Mirror:
    """The local tree of the objects under ``url`` (those ending in ``suffixes``, if given)."""
    from litpredict.process.ranks import local_rank

    url = urls.checked_url(url).rstrip("/")
    store = store_for(url)
    wanted = tuple(s.lower() for s in suffixes) if suffixes else None
    listed = [
        (relative, info)
        for info in store.listing(url)
        if (relative := _relative(url, info.url))
        and (wanted is None or relative.lower().endswith(wanted))
    ]
    if not listed:
        raise RemoteNotFound(
            f"no {'files of ' + ', '.join(wanted) + ' ' if wanted else 'objects '}under "
            f"{urls.redacted(url)}",
            "check the URL: it names a folder (a prefix) of the store",
        )
    cache = cache_dir()
    key = _tree_key(url, listed)
    tree = cache / "trees" / key

    def ready() -> Mirror | None:
        if refresh or key.startswith("unversioned-"):
            return None
        return _read_tree(url, tree)

    def make() -> Mirror:
        def one(item: tuple[str, ObjectInfo]) -> Any:
            return fetch(item[1].url, info=item[1], first=True, store=store)

        fetched = each(listed, one)
        files = [(rel, f.sha256, f.size) for (rel, _), f in zip(listed, fetched, strict=True)]
        links = [(rel, f.path) for (rel, _), f in zip(listed, fetched, strict=True)]
        _build_tree(tree, links, {"url": url, "files": files})
        return Mirror(url, tree, files)

    lock = cache / "locks" / f"tree-{key}.lock"
    return once_per_node(lock, ready, make, first=local_rank() == 0)


def _relative(prefix: str, url: str) -> str | None:
    """``cat/001.png`` for an object under ``prefix``; a key that climbs out is refused."""
    if not url.startswith(prefix + "/"):
        return None
    relative = url[len(prefix) + 1 :]
    parts = PurePosixPath(relative).parts
    if not relative or relative.startswith("/") or ".." in parts or "." in parts:
        raise RemoteError(
            f"the object {urls.redacted(url)} has a name that climbs out of its folder",
            "rename the object (no '..' or '.' path segments)",
        )
    return relative


def _tree_key(url: str, listed: list[tuple[str, ObjectInfo]]) -> str:
    digest = hashlib.sha256(url.encode() + b"\0")
    for relative, info in listed:
        if info.tag is None:  # nothing tells an unchanged folder from a changed one
            return f"unversioned-{secrets.token_hex(8)}"
        digest.update(f"{relative}\0{info.tag}\0{info.size}\n".encode())
    return digest.hexdigest()


def _read_tree(url: str, tree: Path) -> Mirror | None:
    try:
        record = json.loads((tree / TREE_RECORD).read_text())
    except (OSError, ValueError):
        return None
    files = [tuple(f) for f in record.get("files", [])]
    if record.get("url") != url or not all(_intact(tree / rel, size) for rel, _, size in files):
        return None  # a tree whose objects were deleted from the cache: build it again
    return Mirror(url, tree, files)


def _intact(link: Path, size: int) -> bool:
    """Whether a tree's file still leads to its object, of its size (a folder's objects are
    checked by size on reuse; a single file, a checkpoint, is hashed again)."""
    try:
        return link.stat().st_size == size
    except OSError:
        return False


def _build_tree(tree: Path, links: list[tuple[str, Path]], record: dict[str, Any]) -> None:
    """The tree of links and its record, built aside and renamed into place (readers never
    see half a tree)."""
    building = tree.with_name(f".{tree.name}.{os.getpid()}.{secrets.token_hex(3)}")
    try:
        for relative, target in links:
            link = building / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target.resolve())
        building.mkdir(parents=True, exist_ok=True)
        (building / TREE_RECORD).write_text(json.dumps(record))
        shutil.rmtree(tree, ignore_errors=True)  # a stale tree of the same listing
        os.replace(building, tree)
    finally:
        shutil.rmtree(building, ignore_errors=True)
