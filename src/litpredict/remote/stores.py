"""The stores behind URLs: any fsspec protocol whose package is installed, and http(s).

One small interface (:class:`Store`): what an object is (size, ETag, version), its bytes
streamed into a file, a prefix's objects, a glob, an upload. Every error a user can act on
becomes a :class:`~litpredict.process.errors.RemoteError` naming the URL: a missing
object, bucket or credential, a missing package (naming the extra to install). http(s)
goes through the standard library (no extra, bounded timeouts, never a credential).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from litpredict.process.errors import (
    MissingExtra,
    RemoteCredentialsError,
    RemoteError,
    RemoteNotFound,
)
from litpredict.remote import urls

TIMEOUT_VARIABLE = "LITPREDICT_REMOTE_TIMEOUT"
TIMEOUT_S = 60.0  # seconds without a byte before an http(s) request gives up
CHUNK = 1 << 20
# Loggers of the stores' clients: at DEBUG they print request headers (a session token, a
# signature). Held at INFO whatever the root logger's level, so no credential reaches a log.
CLIENT_LOGGERS = ("botocore", "aiobotocore", "boto3", "s3fs", "gcsfs", "fsspec", "urllib3")
CLIENT_LOGGERS += ("google.auth", "adlfs", "azure")
CREDENTIALS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials; "
    "AWS_ENDPOINT_URL for an S3-compatible server), GOOGLE_APPLICATION_CREDENTIALS for gs://, "
    "or fsspec's config (e.g. FSSPEC_S3_ANON=true for a public bucket)"
)

log = logging.getLogger(__name__)


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


# --- http(s): the standard library ---------------------------------------------------------


class HttpStore:
    """Plain GET and HEAD, no credentials, a timeout on every request; no listing."""

    def info(self, url: str) -> ObjectInfo:
        """A HEAD request; a server that refuses HEAD gives an object of unknown identity
        (downloaded by every run)."""
        from urllib.error import HTTPError
        from urllib.request import Request, urlopen

        try:
            with urlopen(Request(url, method="HEAD"), timeout=timeout_s()) as response:
                return _http_info(url, response.headers)
        except HTTPError as error:
            if error.code in (405, 501):  # HEAD not allowed / not implemented
                return ObjectInfo(url=url, size=None)
        except OSError:
            pass
        with self._request(Request(url, method="HEAD"), url) as response:  # names the error
            return _http_info(url, response.headers)

    def download(self, url: str, target: Path, info: ObjectInfo) -> None:
        """One GET, streamed to ``target``; the object must still be the one ``info`` saw."""
        from urllib.request import Request

        with self._request(Request(url), url) as response, target.open("wb") as into:
            got = _http_info(url, response.headers)
            if info.tag is not None and got.tag is not None and got.tag != info.tag:
                raise _changed(url)
            while block := response.read(CHUNK):
                into.write(block)

    def open(self, url: str) -> BinaryIO:
        raise RemoteError(f"{url} cannot be read in parts", "download it first")

    def listing(self, url: str) -> list[ObjectInfo]:
        raise RemoteError(
            f"{url} is an http(s) URL: http lists no folders",
            "put the files in an object store (s3://, gs://) or on a local disk, or name one file",
        )

    def glob(self, pattern: str) -> list[str]:
        raise RemoteError(
            f"glob({pattern}): http(s) URLs cannot be listed",
            'list the checkpoints: \'ckpt_path="https://host/a.ckpt","https://host/b.ckpt"\'',
        )

    def upload(self, local: str, url: str) -> None:
        raise RemoteError(
            f"upload_to={url}: litpredict uploads to object stores, not over http",
            "set upload_to=s3://bucket/prefix (or gs://, or another fsspec URL)",
        )

    @contextmanager
    def _request(self, request: Any, url: str) -> Iterator[Any]:
        from urllib.error import HTTPError, URLError
        from urllib.request import urlopen

        shown = urls.redacted(url)
        try:
            response = urlopen(request, timeout=timeout_s())
        except HTTPError as error:
            if error.code in (404, 410):
                raise RemoteNotFound(
                    f"{shown} does not exist (HTTP {error.code})", "check the URL"
                ) from None
            if error.code in (401, 403):
                raise RemoteCredentialsError(
                    f"{shown} refused access (HTTP {error.code}); litpredict sends no "
                    "credentials over http(s)",
                    "make the file readable without credentials, or put it in an object "
                    "store (s3://...) whose credentials come from the environment",
                ) from None
            raise RemoteError(f"{shown}: HTTP {error.code} {error.reason}", "try again") from None
        except (URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RemoteError(
                f"cannot reach {shown}: {reason}",
                f"check the host and the network (the timeout is {timeout_s():g} s: "
                f"{TIMEOUT_VARIABLE})",
            ) from None
        with response:
            yield response


def _http_info(url: str, headers: Any) -> ObjectInfo:
    length = headers.get("Content-Length")
    etag = headers.get("ETag")
    if etag and etag.startswith("W/"):  # a weak ETag says nothing about the bytes
        etag = None
    modified = headers.get("Last-Modified")
    return ObjectInfo(
        url=url,
        size=int(length) if length and length.isdigit() else None,
        etag=etag.strip('"') if etag else None,
        version=None if etag else modified,
    )


def _changed(url: str) -> RemoteError:
    return RemoteError(
        f"{urls.redacted(url)} changed while it was being downloaded",
        "run the same command again once the object is no longer being written",
    )


# --- fsspec: s3://, gs://, az:// and the rest ----------------------------------------------


class FsspecStore:
    """A store through fsspec (s3fs, gcsfs, adlfs): credentials from their usual places."""

    def __init__(self, url: str) -> None:
        self.protocol = urls.protocol(url)
        self.fs = _filesystem(url)

    def _path(self, url: str) -> str:
        return self.fs._strip_protocol(url)

    def _url(self, path: str) -> str:
        return f"{self.protocol}://{path.lstrip('/')}"

    def info(self, url: str) -> ObjectInfo:
        with self._errors(url):
            found = self.fs.info(self._path(url))
        if found.get("type") == "directory":
            return ObjectInfo(url=url, size=None, etag=None, version="directory")
        return _fsspec_info(url, found)

    def download(self, url: str, target: Path, info: ObjectInfo) -> None:
        """One streamed GET (the store's ``get_file``) of exactly the version ``info`` names
        where the store keeps versions; else the ETag is checked again afterwards."""
        versioned = self.protocol in ("s3", "s3a") and info.version
        with self._errors(url):
            if versioned:
                self.fs.get_file(self._path(url), str(target), version_id=info.version)
            else:
                self.fs.get_file(self._path(url), str(target))
        if not versioned and info.etag is not None and self.info(url).etag != info.etag:
            raise _changed(url)

    def open(self, url: str) -> BinaryIO:
        with self._errors(url):
            return self.fs.open(self._path(url), "rb", block_size=1 << 16, cache_type="bytes")

    def listing(self, url: str) -> list[ObjectInfo]:
        with self._errors(url):
            found = self.fs.find(self._path(url), detail=True)
        return [
            _fsspec_info(self._url(path), entry)
            for path, entry in sorted(found.items())
            if entry.get("type", "file") == "file"
        ]

    def glob(self, pattern: str) -> list[str]:
        with self._errors(pattern):
            found = self.fs.glob(self._path(pattern), detail=True)
        return sorted(self._url(p) for p, e in found.items() if e.get("type", "file") == "file")

    def upload(self, local: str, url: str) -> None:
        with self._errors(url):
            self.fs.put_file(local, self._path(url))

    @contextmanager
    def _errors(self, url: str) -> Iterator[None]:
        """Store errors as RemoteErrors that name the URL (and the bucket, if it is missing)."""
        shown = urls.redacted(url)
        try:
            yield
        except RemoteError:
            raise
        except FileNotFoundError as error:
            bucket = self._missing_bucket(url, error)
            if bucket:
                raise RemoteNotFound(
                    f"the bucket {bucket!r} does not exist ({shown})",
                    "check the bucket's name (and AWS_ENDPOINT_URL / the region)",
                ) from None
            raise RemoteNotFound(f"{shown} does not exist", "check the URL") from None
        except PermissionError as error:
            raise RemoteCredentialsError(
                f"access to {shown} is denied: {_first(error)}",
                "use credentials allowed to read (or write) it: " + CREDENTIALS_FIX,
            ) from None
        except Exception as error:
            if _is_credentials_error(error):
                raise RemoteCredentialsError(
                    f"no credentials were found for {shown} ({_first(error)})", CREDENTIALS_FIX
                ) from None
            raise RemoteError(
                f"{shown}: {type(error).__name__}: {_first(error)}",
                "check the URL, the network and AWS_ENDPOINT_URL (or the store's settings)",
            ) from error

    def _missing_bucket(self, url: str, error: BaseException) -> str | None:
        text = str(error).lower()
        bucket = self._path(url).split("/", 1)[0]
        if "bucket" in text and ("not exist" in text or "nosuchbucket" in text):
            return bucket
        return None


def _filesystem(url: str) -> Any:
    """A fresh fsspec filesystem for ``url``'s protocol: credentials as the environment
    has them now (an instance cached from before would keep old ones)."""
    import fsspec

    name = urls.protocol(url)
    try:
        cls = fsspec.get_filesystem_class(name)
    except ImportError:
        extra = urls.extra_for(url)
        package = urls.PACKAGES.get(name, f"the fsspec package for {name}://")
        install = f"pip install 'litpredict[{extra}]'" if extra else f"pip install {package}"
        raise MissingExtra(
            f"{urls.redacted(url)}: reading {name}:// URLs needs {package}, which is not installed",
            install,
        ) from None
    except ValueError:
        raise RemoteError(
            f"{urls.redacted(url)}: unknown protocol {name}://",
            "use s3://, gs://, http(s):// or another protocol fsspec knows, or a local path",
        ) from None
    options = fsspec.config.conf.get(name, {})
    return cls(skip_instance_cache=True, **options)


def _fsspec_info(url: str, entry: dict[str, Any]) -> ObjectInfo:
    etag = entry.get("ETag") or entry.get("etag")
    version = entry.get("VersionId") or entry.get("version_id") or entry.get("generation")
    size = entry.get("size", entry.get("Size"))
    return ObjectInfo(
        url=url,
        size=int(size) if size is not None else None,
        etag=str(etag).strip('"') if etag else None,
        version=str(version) if version not in (None, "null") else None,
    )


def _is_credentials_error(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names & {"NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"}
        | {"CredentialRetrievalError", "ClientAuthenticationError"}
    ) or bool(re.search(r"unable to locate credentials", str(error), re.IGNORECASE))


def _first(error: BaseException) -> str:
    text = urls.redacted(str(error).strip())
    return text.splitlines()[0] if text else type(error).__name__


def each(items: list[Any], work: Callable[[Any], Any], threads: int = 8) -> list[Any]:
    """``work`` on every item, a few at a time (downloads wait on the network, not the CPU)."""
    if len(items) <= 1:
        return [work(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(work, items))
