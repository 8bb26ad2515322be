"""http(s) objects through the standard library: no extra, bounded timeouts, never a
credential (a URL with one is refused before it gets here, ``remote.urls``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from litpredict.process.errors import RemoteCredentialsError, RemoteError, RemoteNotFound
from litpredict.remote import urls
from litpredict.remote.objects import (
    CHUNK,
    TIMEOUT_VARIABLE,
    ObjectInfo,
    changed_while_downloading,
    timeout_s,
)


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
                raise changed_while_downloading(url)
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
