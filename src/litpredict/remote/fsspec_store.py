"""Objects through fsspec: s3://, gs://, az:// and any protocol whose package is
installed, with credentials from their usual places (``AWS_*``, ``~/.aws``, fsspec's
config). A missing package names the litpredict extra that installs it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from litpredict.process.errors import (
    MissingExtra,
    RemoteCredentialsError,
    RemoteError,
    RemoteNotFound,
)
from litpredict.remote import urls
from litpredict.remote.objects import ObjectInfo, changed_while_downloading

CREDENTIALS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials; "
    "AWS_ENDPOINT_URL for an S3-compatible server), GOOGLE_APPLICATION_CREDENTIALS for gs://, "
    "or fsspec's config (e.g. FSSPEC_S3_ANON=true for a public bucket)"
)


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
            raise changed_while_downloading(url)

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
