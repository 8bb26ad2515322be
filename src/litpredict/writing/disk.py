"""Write errors in the write path (disk full, quota, read-only, I/O) as one clear message.

Every step that writes (shards, merge, formats) runs inside :func:`write_errors`, so a
full disk ends the run with a :class:`PredictionError` naming the folder and the fix,
never a traceback; the merge preallocates its files so a full disk is an error at
that point, not a SIGBUS while writing through a memory map.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from litpredict.process.errors import PredictionError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_WORDS = ("no space left", "disk quota", "file too large")
# torch.save reports a failed write as a RuntimeError of its C++ stream writer.
_TORCH_WRITE_FAILED = ("file write failed", "failed writing file", "unexpected pos")


def is_write_failure(error: BaseException) -> bool:
    """An OSError, or torch's RuntimeError for a write that failed."""
    if isinstance(error, OSError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(w in text for w in _TORCH_WRITE_FAILED)


def _disk_full(error: BaseException, directory: Path) -> bool:
    if getattr(error, "errno", None) in _FULL:
        return True
    if any(word in str(error).lower() for word in _FULL_WORDS):
        return True
    try:
        return shutil.disk_usage(directory).free < (1 << 20)
    except OSError:
        return False


def write_error(what: str, directory: Path, error: BaseException) -> PredictionError:
    """The message for ``error``, raised while writing ``what`` under ``directory``."""
    if _disk_full(error, directory):
        return PredictionError(
            f"no space left on the device while writing {what} in {str(directory)!r}",
            "free space there (or predict into another hydra.run.dir), then run the same "
            "command again",
        )
    reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[0]
    return PredictionError(
        f"cannot write {what} in {str(directory)!r}: {reason}",
        "check that the run directory is writable and its disk healthy, then run the same "
        "command again",
    )


@contextlib.contextmanager
def write_errors(what: str, directory: Path) -> Iterator[None]:
    """Turn a failed write inside the block into :func:`write_error`'s message."""
    try:
        yield
    except PredictionError:
        raise
    except Exception as error:
        if not is_write_failure(error):
            raise
        raise write_error(what, directory, error) from error
