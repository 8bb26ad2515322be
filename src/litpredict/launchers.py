"""What a prediction job needs from the process a Hydra launcher runs it in.

hydra-joblib-launcher runs jobs in loky workers, whose multiprocessing start method is
``"loky"``: a context only loky's own executor knows. Processes a job starts from there
fail: DataLoader workers (``'Process' object has no attribute 'env'``) and the ranks of
``ddp_spawn`` (``cannot find context for 'loky'``). :class:`PlainStartMethod` puts the
platform's default back before the job runs, so such a job behaves like a command-line run.
"""

from __future__ import annotations

import logging
import multiprocessing
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)

FOREIGN_METHODS = {"loky"}


def restore_start_method() -> str | None:
    """Reset a launcher's foreign start method to the platform default; return the one replaced."""
    current = multiprocessing.get_start_method(allow_none=True)
    if current not in FOREIGN_METHODS:
        return None
    default = multiprocessing.get_all_start_methods()[0]  # fork on Linux, spawn on macOS
    multiprocessing.set_start_method(default, force=True)
    log.debug("multiprocessing start method %r -> %r for this job", current, default)
    return current


class PlainStartMethod(Callback):
    """Runs :func:`restore_start_method` at the start of every job (a no-op outside loky)."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        restore_start_method()
