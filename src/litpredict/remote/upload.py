"""``upload_to=s3://bucket/prefix``: a complete run's outputs copied to an object store.

The outputs the manifest lists (each verified against its SHA-256 first) and ``.hydra/``
go first, ``manifest.json`` last: a prefix with a ``manifest.json`` holds a whole run,
whatever stopped an upload. The local manifest records ``upload: {url, files, complete}``
before the first file goes; running the same command again finishes an upload it finds
unfinished (files already there with the same size, and the same MD5 where the ETag is
one, are not sent again). A prefix holding another run's upload is never written over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from litpredict.process.errors import RemoteError
from litpredict.remote import urls
from litpredict.remote.fsspec_store import FsspecStore
from litpredict.remote.objects import ObjectInfo
from litpredict.remote.stores import quiet_clients

MANIFEST = "manifest.json"
HYDRA_FILES = (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml")
_MD5 = re.compile(r"^[0-9a-f]{32}$")

log = logging.getLogger(__name__)


def target_of(upload_to: str, run_dir: Path, multirun: bool) -> str:
    """Where a run goes: the prefix itself, or ``<prefix>/<job dir name>`` for a sweep's job."""
    target = urls.checked_url(str(upload_to), "upload_to").rstrip("/")
    if not urls.is_url(target) or urls.is_http(target):
        raise RemoteError(
            f"upload_to={target}: litpredict uploads to object stores, not "
            + ("over http" if urls.is_url(target) else "to a local path"),
            "set upload_to=s3://bucket/prefix (or gs://, or another fsspec URL)",
        )
    return urls.join(target, run_dir.name) if multirun else target


def upload_run(run_dir: Path, target: str) -> dict[str, Any]:
    """Upload the complete run in ``run_dir`` to ``target`` (or finish doing so).

    Returns the local manifest, with its ``upload`` record complete.
    """
    from litpredict.rundir.manifest import COMPLETE, is_complete, read_manifest

    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != COMPLETE or not is_complete(run_dir):
        raise RemoteError(
            f"{run_dir} holds no complete run: nothing is uploaded",
            "run the same command again to complete the run; its upload follows",
        )
    quiet_clients()
    store = FsspecStore(target)
    record = manifest.get("upload") or {}
    if record.get("url") == target and record.get("complete"):
        return manifest
    files = [str(o["path"]) for o in manifest["outputs"]]
    files += [name for name in HYDRA_FILES if (run_dir / name).is_file()]
    there = {_relative(target, info.url): info for info in store.listing(target)}
    resuming = record.get("url") == target
    if MANIFEST in there:
        if not _same_run(store, target, manifest):
            raise RemoteError(
                f"{urls.join(target, MANIFEST)} holds another run's upload; litpredict "
                "never writes over it",
                "set upload_to to a new prefix",
            )
    elif there and not resuming:
        shown = ", ".join(sorted(there)[:3])
        raise RemoteError(
            f"{target} already holds {len(there)} objects ({shown}) that no upload of this "
            "run put there; litpredict never writes over them",
            "set upload_to to a new (empty) prefix",
        )
    started = {"url": target, "files": [*files, MANIFEST], "complete": False}
    _save(run_dir, manifest | {"upload": started})
    sent = 0
    for relative in files:
        if relative in there and _same(run_dir / relative, there[relative]):
            continue
        store.upload(str(run_dir / relative), urls.join(target, relative))
        sent += 1
    final = manifest | {"upload": {**started, "complete": True}}
    with tempfile.TemporaryDirectory(prefix="litpredict-upload-") as folder:
        staged = Path(folder) / MANIFEST
        staged.write_text(_json(final))
        store.upload(str(staged), urls.join(target, MANIFEST))  # last: the upload is whole
    _save(run_dir, final)
    log.info("uploaded %d of %d files to %s, manifest.json last", sent, len(files), target)
    return final


def _relative(target: str, url: str) -> str:
    return url[len(target) + 1 :] if url.startswith(target + "/") else url


def _same(local: Path, remote: ObjectInfo) -> bool:
    """Whether an object already there holds ``local``'s bytes (size, and MD5 if the ETag
    is one: a single-part upload's ETag)."""
    if remote.size != local.stat().st_size:
        return False
    if remote.etag and _MD5.match(remote.etag):
        digest = hashlib.md5(usedforsecurity=False)
        with local.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        return digest.hexdigest() == remote.etag
    return True


def _same_run(store: FsspecStore, target: str, manifest: dict[str, Any]) -> bool:
    """Whether the ``manifest.json`` at ``target`` is this run's (an upload finished before
    its local record was)."""
    with tempfile.TemporaryDirectory(prefix="litpredict-upload-") as folder:
        copy = Path(folder) / MANIFEST
        url = urls.join(target, MANIFEST)
        store.download(url, copy, store.info(url))
        try:
            there = json.loads(copy.read_text())
        except ValueError:
            return False
    keys = ("started_at", "outputs", "checkpoint")
    return all(there.get(k) == manifest.get(k) for k in keys)


def _json(data: dict[str, Any]) -> str:
    from litpredict.rundir.files import json_text

    return json_text(data) + "\n"


def _save(run_dir: Path, manifest: dict[str, Any]) -> None:
    from litpredict.rundir.files import write_json
    from litpredict.rundir.manifest import FILENAME

    write_json(run_dir / FILENAME, manifest)
