"""URLs as litpredict takes them: which values are URLs, their parts, what they may not hold.

Credentials come only from the standard places (``AWS_*`` variables, ``~/.aws``, fsspec's
config); a URL that carries one (``https://user:password@host/...``, a presigned query)
would put it into the manifest, the run's log and ``.hydra/``, so it is refused, and any
message that shows such a URL shows it redacted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from litpredict.process.errors import RemoteCredentialsError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
HTTP = frozenset({"http", "https"})
# A protocol's package and the extra of litpredict that installs it.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "adl": "adlfs",
}
# Query parameters that carry a credential: presigned S3/GCS URLs, Azure SAS, tokens.
_SECRET_QUERY = re.compile(
    r"signature|credential|security-token|token|^sig$|secret|password|^key$|apikey|api_key",
    re.IGNORECASE,
)
# A URL's user-info part, wherever it appears in a text (messages, config values).
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]+@")
# Environment variables that hold credentials: their values may appear in no config.
_SECRET_VARIABLE = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|CREDENTIAL|SAS_|ACCOUNT_KEY", re.IGNORECASE
)
_PATH_VARIABLE = re.compile(r"(FILE|PATH|DIR|GOOGLE_APPLICATION_CREDENTIALS)$", re.IGNORECASE)
# Config keys that hold credentials: none may be in a config (it goes into the manifest).
SECRET_KEYS = frozenset(
    {
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "token",
        "account_key",
        "sas_token",
        "credentials",
    }
)


def is_url(value: Any) -> bool:
    """Whether ``value`` is a URL (``s3://...``, ``https://...``), not a local path."""
    if not isinstance(value, str):
        return False
    match = _SCHEME.match(value.strip())
    return bool(match) and match.group(1).lower() != "file"


def protocol(url: str) -> str:
    """``s3`` for ``s3://bucket/key`` (lower case)."""
    match = _SCHEME.match(url)
    if match is None:
        raise ValueError(f"not a URL: {url!r}")
    return match.group(1).lower()


def is_http(url: str) -> bool:
    return protocol(url) in HTTP


def redacted(text: str) -> str:
    """``text`` with every URL's user-info and credential-bearing query values as ``***``."""
    text = _USERINFO.sub(r"\1***@", str(text))
    return re.sub(
        r"([?&])([^=&#\s]+)=([^&#\s]*)",
        lambda m: f"{m.group(1)}{m.group(2)}=***" if _SECRET_QUERY.search(m.group(2)) else m[0],
        text,
    )


def checked_url(url: str, key: str = "the URL") -> str:
    """``url`` (stripped) if it carries no credential; else a RemoteCredentialsError."""
    url = url.strip()
    parts = urlsplit(url)
    secret_query = [k for k, _ in parse_qsl(parts.query) if _SECRET_QUERY.search(k)]
    if "@" in parts.netloc or secret_query:
        what = "a user name or password" if "@" in parts.netloc else f"{secret_query[0]}="
        raise RemoteCredentialsError(
            f"{key} {redacted(url)} carries a credential ({what}); it would be written into "
            "the manifest, the log and .hydra/, so litpredict refuses it",
            "give the URL without it and put the credential where the store's client looks: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials), "
            "GOOGLE_APPLICATION_CREDENTIALS, or fsspec's config (FSSPEC_<PROTOCOL>_<OPTION>)",
        )
    return url


def name(url: str) -> str:
    """The last segment of the URL's path: ``epoch=3-step=100.ckpt``."""
    return urlsplit(url).path.rstrip("/").rpartition("/")[2]


def parent(url: str) -> str:
    """The URL one folder up (``s3://b/run/x.ckpt`` -> ``s3://b/run``), query dropped."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/").rpartition("/")[0]
    return f"{parts.scheme}://{parts.netloc}{path}"


def join(url: str, *segments: str) -> str:
    """``url`` with ``segments`` appended as path segments."""
    tail = "/".join(s.strip("/") for s in segments if s.strip("/"))
    return f"{url.rstrip('/')}/{tail}" if tail else url


def suffixes(url: str) -> str:
    """``.csv.gz`` for ``s3://b/data.csv.gz``: kept on cached copies, readers look at it."""
    base = name(url)
    found = re.search(r"(\.[A-Za-z0-9]{1,8})+$", base)
    return found.group(0)[-24:] if found else ""


def extra_for(url: str) -> str | None:
    """The extra of litpredict that installs the package ``url``'s protocol needs."""
    return EXTRAS.get(protocol(url))


def credentials_in(config: Any, where: str = "") -> list[str]:
    """Where ``config`` (a plain container) holds a credential: a secret-named key with a
    value, or a URL with user-info / a presigned query. Empty when it holds none."""
    found: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            at = f"{where}.{key}" if where else str(key)
            if str(key).lower() in SECRET_KEYS and value not in (None, "", {}, []):
                found.append(at)
            else:
                found += credentials_in(value, at)
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            found += credentials_in(value, f"{where}[{index}]")
    elif isinstance(config, str) and "://" in config and redacted(config) != config:
        found.append(where or config)
    return found


def _secret_values() -> list[str]:
    """The values of this process's credential variables (``AWS_SECRET_ACCESS_KEY``...)."""
    import os

    return [
        value
        for name, value in os.environ.items()
        if _SECRET_VARIABLE.search(name)
        and not _PATH_VARIABLE.search(name)  # where a credential lies, not the credential
        and len(value.strip()) >= 8
    ]


def _holding(config: Any, secrets: list[str], where: str = "") -> list[str]:
    """Where a string of ``config`` contains one of ``secrets`` (``${oc.env:...}`` resolved)."""
    if isinstance(config, dict):
        return [p for k, v in config.items() for p in _holding(v, secrets, f"{where}.{k}")]
    if isinstance(config, (list, tuple)):
        return [p for i, v in enumerate(config) for p in _holding(v, secrets, f"{where}[{i}]")]
    if isinstance(config, str) and any(secret in config for secret in secrets):
        return [where.lstrip(".") or "a value"]
    return []


def refuse_credentials(config: Any, overrides: list[str] = ()) -> None:
    """A RemoteCredentialsError when the config or the command line holds a credential:
    a secret-named key, a URL with one, or the value of a credential variable."""
    places = credentials_in(config)
    places += _holding(config, _secret_values())
    places += [f"override {redacted(o)}" for o in overrides if redacted(o) != o]
    if places:
        raise RemoteCredentialsError(
            f"the config holds a credential ({', '.join(places[:3])}); the config is written "
            "into the manifest, the log and .hydra/, so litpredict refuses it",
            "remove it and put the credential where the store's client looks: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials), "
            "GOOGLE_APPLICATION_CREDENTIALS, or fsspec's config (FSSPEC_<PROTOCOL>_<OPTION>)",
        )
