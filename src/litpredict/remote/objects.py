"""What every store says of an object (:class:`ObjectInfo`), the interface a store
offers (:class:`Store`), and the limits they share (the http timeout, the read chunk)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from litpredict.process.errors import RemoteError
from litpredict.remote import urls

TIMEOUT_VARIABLE = "LITPREDICT_REMOTE_TIMEOUT"
TIMEOUT_S = 60.0  # seconds without a byte before an http(s) request gives up
CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says of one object: enough to tell whether it changed since."""

    url: str
    size: int | None
    etag: str | None = None
    version: str | None = None  # VersionId (s3), generation (gs), Last-Modified (http)

    @property
    def tag(self) -> str | None:
        """The object's identity beyond its URL; None when the store gives none."""
        if self.etag is None and self.version is None:
            return None
        return f"{self.etag or ''}|{self.version or ''}"

    def record(self) -> dict[str, Any]:
        """``{etag, version}`` as the manifest keeps them (only those known)."""
        return {k: v for k, v in (("etag", self.etag), ("version", self.version)) if v}


class Store(Protocol):
    def info(self, url: str) -> ObjectInfo: ...

    def download(self, url: str, target: Path, info: ObjectInfo) -> None: ...

    def listing(self, url: str) -> list[ObjectInfo]: ...

    def glob(self, pattern: str) -> list[str]: ...

    def open(self, url: str) -> BinaryIO: ...

    def upload(self, local: str, url: str) -> None: ...


def timeout_s() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        return float(value) if value else TIMEOUT_S
    except ValueError:
        return TIMEOUT_S


def changed_while_downloading(url: str) -> RemoteError:
    """The error for an object whose ETag or size changed under a download."""
    return RemoteError(
        f"{urls.redacted(url)} changed while it was being downloaded",
        "run the same command again once the object is no longer being written",
    )
