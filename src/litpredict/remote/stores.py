"""The stores behind URLs: any fsspec protocol whose package is installed, and http(s).

One small interface (``objects.Store``): what an object is (size, ETag, version), its
bytes streamed into a file, a prefix's objects, a glob, an upload. Every error a user can
act on becomes a :class:`~litpredict.process.errors.RemoteError` naming the URL: a missing
object, bucket or credential, a missing package (naming the extra to install).
:func:`store_for` picks ``http_store.HttpStore`` or ``fsspec_store.FsspecStore``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litpredict.remote import urls
from litpredict.remote.fsspec_store import FsspecStore
from litpredict.remote.http_store import HttpStore
from litpredict.remote.objects import Store

# Loggers of the stores' clients: at DEBUG they print request headers (a session token, a
# signature). Held at INFO whatever the root logger's level, so no credential reaches a log.
CLIENT_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3fs", "gcsfs", "fsspec", "urllib3")
CLIENT_LOGGERS += ("google.auth", "adlfs", "azure")


def quiet_clients() -> None:
    """Hold the store clients' loggers at INFO (see :data:`CLIENT_LOGGERS`)."""
    for name in CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


def store_for(url: str) -> Store:
    """The store that reads ``url``; a missing package names the extra that installs it."""
    quiet_clients()
    if urls.is_http(url):
        return HttpStore()
    return FsspecStore(url)


def each(items: list[Any], work: Callable[[Any], Any], threads: int = 8) -> list[Any]:
    """``work`` on every item, a few at a time (downloads wait on the network, not the CPU)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(work, items))
