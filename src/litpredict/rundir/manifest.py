"""``manifest.json``: the record of one run, rewritten atomically at every change of status.

``status`` is ``running`` while predicting, ``complete`` only once every output file
is in place and hashed, else ``failed`` or ``interrupted`` with a one-line ``error``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from litpredict.rundir.files import write_json

FILENAME = "manifest.json"

# The values of a manifest's ``status``, and so of a sweep summary's status column.
RUNNING = "running"
COMPLETE = "complete"
FAILED = "failed"
INTERRUPTED = "interrupted"


def end_status(error: BaseException) -> str:
    """A run's status when ``error`` ended it: ``interrupted`` for a signal (litpredict's
    ``RunInterrupted``, ``KeyboardInterrupt``: not ``Exception`` subclasses), else ``failed``."""
    return FAILED if isinstance(error, Exception) else INTERRUPTED


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_complete(run_dir: Path) -> bool:
    """True only if the manifest says complete and every output it lists still has its hash.

    A re-run (a resumed sweep) skips such a run; an edited, truncated or missing output
    means the run is no longer complete, so it runs again.
    """
    from litpredict.rundir.hashing import sha256_file

    manifest = read_manifest(run_dir)
    if not manifest or manifest.get("status") != COMPLETE or not manifest.get("outputs"):
        return False
    for output in manifest["outputs"]:
        path = Path(run_dir) / output.get("path", "")
        if not path.is_file() or output.get("sha256") != sha256_file(path):
            return False
    return True


class Manifest:
    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.path = self.run_dir / FILENAME
        self.data: dict[str, Any] = {}
        self._started = time.monotonic()

    def start(self, **fields: Any) -> None:
        self.data = {
            "status": RUNNING,
            "num_predictions": None,
            "outputs": [],
            "started_at": _now(),
            "finished_at": None,
            "duration_s": None,
            "error": None,
            **fields,
        }
        self._started = time.monotonic()
        self.save()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def finish(self, status: str, **fields: Any) -> None:
        self.data.update(
            status=status,
            finished_at=_now(),
            duration_s=round(time.monotonic() - self._started, 3),
            **fields,
        )
        self.save()

    def save(self) -> None:
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.path, self.data)
