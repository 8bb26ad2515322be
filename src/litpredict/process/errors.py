"""Errors a user can act on: each names the problem and the fix.

Anything raised as :class:`UserError` is shown on stderr as one short message; the
traceback goes to the run's log file only. Also here: how an error raised in a spawned
DDP worker is recognised in the main process (:func:`user_error_in`), and the few lines
that name any other error (:func:`describe`).
"""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

FIX_PREFIX = "\n  fix: "  # between problem and fix in a message; user_error_in splits on it


class UserError(Exception):
    """A problem with the user's input, with a hint on how to fix it.

    ``message=`` is how torch re-raises an error of a DataLoader worker in the main
    process (``cls(message=<the worker's traceback text>)``): the problem and fix are
    read back from that text, as :func:`user_error_in` does for a DDP worker's.
    """

    def __init__(
        self, problem: str = "", fix: str | None = None, *, message: str | None = None
    ) -> None:
        if message is not None:
            carried = _carried(message)
            problem, fix = (carried[1], carried[2]) if carried else (message, None)
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.problem if self.fix is None else f"{self.problem}{FIX_PREFIX}{self.fix}"


class CheckpointError(UserError):
    """The checkpoint cannot be read, is unsafe, or does not fit the model."""


class DataError(UserError):
    """The predict data is missing, empty or of the wrong shape."""


class PredictionError(UserError):
    """Predictions are incomplete or inconsistent; nothing is marked complete."""


class RunDirError(UserError):
    """The run directory is someone else's, in use, or holds another complete run."""


class ImageError(DataError):
    """An image that cannot be read, named by path (also from a DataLoader worker)."""


class RemoteError(UserError):
    """A URL (``s3://``, ``gs://``, ``http(s)://``) that cannot be read or written."""


class RemoteNotFound(RemoteError):
    """The object, folder or bucket a URL names does not exist."""


class RemoteCredentialsError(RemoteError):
    """No credentials for a store, credentials refused, or credentials where none may be."""


class MissingExtra(RemoteError):
    """A URL whose protocol needs a package that is not installed (an extra of litpredict)."""


def first_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's message (its type's name if it has none).

    What a manifest's ``error`` field, a sweep summary's row and a failed job's line show.
    """
    text = str(error).strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


# What a filesystem refuses, in words, and what to do about it.
_FILESYSTEM = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
}
FILESYSTEM_FIX = (
    "free space, or write to a place with space that you may write to (--out DIR), and "
    "check the permissions of the file named; then run the same command again"
)


def filesystem_error(error: BaseException) -> UserError | None:
    """A UserError for a full disk, a quota, a read-only filesystem or a denied permission
    behind ``error`` (it or what caused it), naming the file; else None."""
    cause: BaseException | None = error
    while cause is not None and not (isinstance(cause, OSError) and cause.errno in _FILESYSTEM):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    assert isinstance(cause, OSError)
    where = f" ({cause.filename})" if cause.filename else ""
    return UserError(f"{_FILESYSTEM[cause.errno]}{where}", FILESYSTEM_FIX)


P = ParamSpec("P")
R = TypeVar("R")


def filesystem_errors_explained(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` with a full disk, a read-only filesystem or a denied permission raised
    as a :class:`UserError` naming the file (a message and exit 2, never a traceback)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except OSError as error:
            known = filesystem_error(error)
            if known is None:
                raise
            raise known from error

    return wrapper


class RunInterrupted(BaseException):
    """Raised by litpredict's SIGINT/SIGTERM handler so cleanup code runs.

    A BaseException, like KeyboardInterrupt: code that catches ``Exception`` (Lightning
    checks hook signatures that way) must not turn an interrupt into another error.
    """

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(f"interrupted by {signal_name}")


# How a UserError travels back from a ddp_spawn worker. torch.multiprocessing.spawn hands
# the main process only the worker's ``traceback.format_exc()`` text, and no code of
# litpredict's sees the exception in the worker (Lightning's worker entry has no
# try/except and calls no ``on_exception``). That text ends with the final exception as
# ``<module>.<Class>: <str(error)>``, and ``str(error)`` is :attr:`UserError.message`; so
# encoding (``message``, ``FIX_PREFIX``) and decoding (below) live in this one module, and
# tests/test_ddp.py round-trips a DataError through a real ddp_spawn worker.
_WORKER_TRACEBACK = "Traceback (most recent call last)"
_CARRIED = re.compile(rf"^{re.escape(__name__)}\.(\w+): ", re.MULTILINE)


def _carried(text: str) -> tuple[type[UserError], str, str | None] | None:
    """``(class, problem, fix)`` of the UserError a worker's traceback ``text`` ends with."""
    headers = list(_CARRIED.finditer(text))
    if not headers or _WORKER_TRACEBACK not in text:
        return None
    last = headers[-1]
    message = text[last.end() :]
    if _WORKER_TRACEBACK in message:  # another exception followed ours: it is the one raised
        return None
    cls = globals().get(last.group(1))
    if not (isinstance(cls, type) and issubclass(cls, UserError)):
        cls = UserError
    problem, _, fix = message.strip().partition(FIX_PREFIX)
    return cls, problem.strip(), fix.strip() or None


def user_error_in(error: BaseException) -> UserError | None:
    """The UserError behind ``error``: itself, or the one that ended a spawned DDP worker."""
    if isinstance(error, UserError):
        return error
    carried = _carried(str(error))
    return None if carried is None else carried[0](carried[1], carried[2])


# torch's words for data that does not fit the model, and what to do about it.
_DATA_MISFIT = re.compile(
    r"shapes cannot be multiplied|size mismatch|must be equal to input_size|expected input"
    r"|to have \d+ channels|stack expects each tensor to be equal size|Expected .*dimension",
    re.IGNORECASE,
)
DATA_MISFIT_FIX = (
    "the data does not fit the model: check the number of features, channels or the image "
    "size of the datamodule against the model (e.g. datamodule.image_size=32, model.input_dim)"
)


def describe(error: BaseException, lines: int = 8) -> str:
    """A few lines naming an unexpected error; for a DDP worker's error, the worker's own."""
    text = str(error).strip()
    if _WORKER_TRACEBACK in text:  # raised in a spawned DDP worker
        rank = re.search(r"Process (\d+) terminated", text)
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = f"rank {rank.group(1) if rank else '?'} failed: {last}"
    else:
        kept = text.splitlines()
        body = "\n".join(kept[:lines]) + ("\n..." if len(kept) > lines else "")
        text = f"{type(error).__name__}: {body}"
    if _DATA_MISFIT.search(text):
        text += f"{FIX_PREFIX}{DATA_MISFIT_FIX}"
    return text
