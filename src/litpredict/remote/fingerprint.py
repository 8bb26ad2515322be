"""Data fingerprints of remote inputs, for the manifest and for telling what changed.

A file's entry is ``{path: URL, sha256, bytes, etag|version}`` (the cache's copy's hash,
free once fetched); a folder's is ``{path: URL, files, bytes, sha256}`` over its objects'
names and hashes. :mod:`litpredict.rundir.provenance` calls :func:`remote_entry` for the
URLs among a datamodule's ``input_files`` (rundir/ never imports remote/: it is passed in).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from litpredict.process.errors import RemoteNotFound
from litpredict.remote import urls


def remote_entry(url: str, algorithm: str = "sha256", *, refresh: bool = False) -> dict[str, Any]:
    """The fingerprint of the object or folder at ``url``; ``missing`` when it is gone.

    Always SHA-256 (the cache names objects by it), whatever ``algorithm`` local files use.
    ``refresh`` downloads again (``reproduce``), else unchanged objects come from the cache.
    """
    from litpredict.remote.cache import fetch
    from litpredict.remote.folders import mirror
    from litpredict.remote.stores import store_for

    url = urls.checked_url(url)
    try:
        info = store_for(url).info(url)
        if info.version == "directory":
            return mirror(url, refresh=refresh).record()
        return fetch(url, info=info, refresh=refresh).record()
    except RemoteNotFound:
        return {"path": url, "missing": True}


def refetched(url: str, algorithm: str = "sha256") -> dict[str, Any]:
    """:func:`remote_entry`, downloaded again: what ``reproduce`` compares."""
    return remote_entry(url, algorithm, refresh=True)


cached_entry = partial(remote_entry, refresh=False)
