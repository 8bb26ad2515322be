"""What ran, where, on what: versions, git state, host, command, input fingerprints."""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from litpredict.rundir.hashing import HASHES, hash_file

# Inputs larger than this are fingerprinted by size, mtime and a hash of their first
# and last MiB instead of a full hash (documented in the README).
FULL_HASH_LIMIT = 2 << 30
DATA_HASH = "xxh3_128"  # the default; ``data_hash=sha256`` for sha256sum-checkable entries
DIRECTORY_FILE_LIMIT = 100_000
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# (url, algorithm) -> the URL's fingerprint entry: how rundir/ is handed remote inputs
RemoteEntry = Callable[[str, str], dict[str, Any]]


OPTIONAL = frozenset({"lightning"})  # left out of ``versions`` when not installed


def versions() -> dict[str, str | None]:
    """The versions this process runs (a copy: the manifest may be edited by its caller)."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> dict[str, str | None]:
    """Read once a process: packages loaded into it do not change under a sweep's jobs."""
    names = {
        "torch": "torch",
        "pytorch_lightning": "pytorch-lightning",
        "lightning": "lightning",  # the unified package, recorded only when installed
        "hydra": "hydra-core",
        "omegaconf": "omegaconf",
        "numpy": "numpy",
        "litpredict": "litpredict",
    }
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in names.items():
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if key not in OPTIONAL:
                found[key] = None
    return found


# Settings that make ``git status`` run a command or reach out, switched off for every git
# command litpredict runs, whatever a repository's config says: command-line settings
# outrank every config file. A run directory, a manifest's ``cwd`` or a downloaded folder
# may hold a ``.git`` written by anyone, and provenance must never run its code.
GIT_HARDENED = {
    "core.fsmonitor": "false",  # a command run on every index refresh
    "core.hooksPath": "/dev/null",  # hooks (post-index-change, reference-transaction...)
    "core.untrackedCache": "false",  # no index extension is written
    "protocol.allow": "never",  # no transport: a partial clone's lazy fetch runs nothing
}
# A filter driver's commands: status runs ``clean``/``process`` on a file whose stat data
# changed, for every file ``.gitattributes`` (anyone's) sends to the driver.
FILTER_COMMANDS = ("clean", "smudge", "process")
# Config scopes a repository brings along (its ``.git/config``, ``config.worktree`` and
# what they include); ``system``, ``global`` and ``command`` are the user's own.
REPOSITORY_SCOPES = frozenset({"local", "worktree"})
GIT_TIMEOUT_S = 10


def _git(args: list[str], directory: Path, settings: dict[str, str]) -> str:
    """``git args`` in ``directory`` with ``settings`` outranking every config file.

    The settings travel as ``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n`` (any key, even one
    holding ``=``), after any the user's environment already sets; no pager, no prompt,
    no optional lock (status never writes the index, so no hook could follow).
    """
    env = dict(os.environ)
    start = int(env.get("GIT_CONFIG_COUNT") or 0)
    for n, (key, value) in enumerate(settings.items(), start):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    env.update(
        GIT_CONFIG_COUNT=str(start + len(settings)),
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        PAGER="cat",
        GIT_NO_LAZY_FETCH="1",
    )
    return subprocess.run(
        ["git", "--no-pager", "--no-optional-locks", *args],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
    ).stdout


def _repository_filters(directory: Path) -> dict[str, str]:
    """Settings that blank every filter driver the repository's own config defines.

    ``git config --list`` only reads config files (it runs no hook, filter or monitor);
    a driver the user's global config defines (git-lfs) is the user's and stays.
    """
    listing = _git(["config", "--list", "--show-scope", "-z"], directory, GIT_HARDENED)
    fields = listing.split("\0")
    blanked: dict[str, str] = {}
    for scope, entry in zip(fields[::2], fields[1::2], strict=False):  # a last "" field
        key = entry.partition("\n")[0]
        section, _, rest = key.partition(".")
        driver, _, _ = rest.rpartition(".")
        if scope in REPOSITORY_SCOPES and section == "filter" and driver:
            for command in FILTER_COMMANDS:
                blanked[f"filter.{driver}.{command}"] = ""
            blanked[f"filter.{driver}.required"] = "false"
    return blanked


def git_state(directory: Path | None = None) -> dict[str, Any] | None:
    """``{commit, dirty}`` of the git checkout holding ``directory`` (default: cwd).

    ``git status`` (porcelain v2 names the commit too) with every setting that could run
    a command switched off (:data:`GIT_HARDENED`, the repository's filter drivers) and
    submodules left alone: a repository's config is data here, never code. A file a
    blanked filter would have cleaned (git-lfs defined in the repository's own config)
    and whose stat data changed counts as dirty. A repository git itself refuses (owned
    by another user, ``safe.directory``) records no git state.
    """
    directory = Path(directory or Path.cwd())
    try:
        settings = {**GIT_HARDENED, **_repository_filters(directory)}
        status = _git(
            [
                "status",
                "--porcelain=v2",
                "--branch",
                "--untracked-files=no",
                "--ignore-submodules=all",
            ],
            directory,
            settings,
        ).splitlines()
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    commit = next((line.split()[2] for line in status if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # not a checkout, or no commit yet
        return None
    return {"commit": commit, "dirty": any(not line.startswith("#") for line in status)}


def host() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "command": [sys.executable, *sys.argv],
    }


def _quick_hash(path: Path, algorithm: str) -> str:
    digest = HASHES[algorithm]()
    size = path.stat().st_size
    with path.open("rb") as file:
        digest.update(file.read(1 << 20))
        file.seek(max(0, size - (1 << 20)))
        digest.update(file.read(1 << 20))
    digest.update(str(size).encode())
    return digest.hexdigest()


def checked_data_hash(algorithm: str) -> str:
    """``algorithm`` if litpredict can fingerprint data with it, else a UserError."""
    if algorithm not in HASHES:
        from litpredict.process.errors import UserError

        raise UserError(
            f"unknown data_hash {algorithm!r}",
            f"set data_hash to one of {', '.join(sorted(HASHES))}",
        )
    return algorithm


def file_fingerprint(path: Path, algorithm: str = DATA_HASH) -> dict[str, Any]:
    stat = path.stat()
    entry: dict[str, Any] = {
        "path": str(path.resolve()),
        "bytes": stat.st_size,
        "mtime": stat.st_mtime,
    }
    if stat.st_size <= FULL_HASH_LIMIT:
        entry[algorithm] = hash_file(path, algorithm, mapped=True)
    else:
        entry[f"quick_{algorithm}"] = _quick_hash(path, algorithm)
    return entry


def is_url(path: Any) -> bool:
    """Whether an input is a URL (``s3://``, ``https://``) rather than a local path."""
    return isinstance(path, str) and bool(_URL.match(path)) and not path.startswith("file:")


def data_fingerprint(
    paths: list[Path | str], algorithm: str = DATA_HASH, remote: RemoteEntry | None = None
) -> list[dict[str, Any]]:
    """Fingerprints of the files a datamodule reads; a directory lists its files.

    A URL's entry comes from ``remote(url, algorithm)`` (litpredict.remote.fingerprint:
    its SHA-256 and ETag); without one it is recorded as not checked.
    """
    checked_data_hash(algorithm)
    entries = []
    for path in paths:
        if is_url(path):
            entries.append(remote(path, algorithm) if remote else {"path": path, "unchecked": True})
            continue
        path = Path(path).expanduser()
        if path.is_file():
            entries.append(file_fingerprint(path, algorithm))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())[:DIRECTORY_FILE_LIMIT]
            digest = HASHES[algorithm]()
            for file in files:
                digest.update(f"{file.relative_to(path)}\0{hash_file(file, algorithm)}\n".encode())
            entries.append(
                {"path": str(path.resolve()), "files": len(files), algorithm: digest.hexdigest()}
            )
        else:
            entries.append({"path": str(path), "missing": True})
    return entries


class BackgroundFingerprint:
    """Fingerprints a run's inputs on a daemon thread; :meth:`result` waits for it.

    Started before the checkpoint is read, the hash records the data as the run found it,
    and on a second core it overlaps checkpoint loading and Lightning's set-up instead of
    adding to the run. A daemon thread never delays the exit of a run that failed.
    ``on_done`` gets the entries on that thread as soon as they are known: a run that may
    be resumed records them with its committed predictions.
    """

    def __init__(
        self,
        paths: list[Path | str],
        algorithm: str = DATA_HASH,
        remote: RemoteEntry | None = None,
        on_done: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        HASHES[checked_data_hash(algorithm)]()  # imports the hash module on this thread
        self._entries: list[dict[str, Any]] | None = None
        self._error: BaseException | None = None
        self._on_done = on_done
        self._thread = threading.Thread(
            target=self._run,
            args=(list(paths), algorithm, remote),
            name="fingerprint",
            daemon=True,
        )
        self._thread.start()

    def _run(self, paths: list[Path | str], algorithm: str, remote: RemoteEntry | None) -> None:
        try:
            self._entries = data_fingerprint(paths, algorithm, remote)
        except BaseException as error:  # re-raised on the caller's thread by result()
            self._error = error
            return
        if self._on_done is not None:
            try:
                self._on_done(self._entries)
            except Exception as error:  # a record that cannot be written: the run goes on
                logging.getLogger(__name__).warning("could not record the data: %s", error)

    def result(self) -> list[dict[str, Any]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._entries or []


def algorithm_of(entry: dict[str, Any]) -> str:
    """The hash a recorded fingerprint used (manifests before XXH3 used SHA-256)."""
    return next((a for a in HASHES if a in entry or f"quick_{a}" in entry), DATA_HASH)


def content_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The parts of a fingerprint that change with the content (not the mtime)."""
    keys = [*HASHES, *(f"quick_{a}" for a in HASHES), "bytes", "files", "missing"]
    return {k: entry.get(k) for k in keys}
