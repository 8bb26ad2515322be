"""Resuming a run from what its earlier attempts committed.

A run stopped part way (kill -9, a preempted or timed-out job, a lost node) leaves
committed segments in ``.shards/attempt<k>/rank<r>`` (see ``shard_layout``). Running the same
command again starts attempt k+1, which:

1. :func:`prepare` (rank 0, before predicting): reads ``.shards/run.json``, the record of
   what the run is: the checkpoint's SHA-256, the resolved config and the input data's
   fingerprint, as ``complete`` checks them (``rundir.same_run.differences``), except the
   keys that only say how many ranks run (:data:`RANK_KEYS`). Any difference, or no data
   fingerprint recorded yet, discards every shard and says why. Otherwise each earlier
   shard is sealed (``segments.seal``: cut back to its last commit that checks out) and the
   samples they hold are marked in ``.shards/done.npy``.
2. ``resumed_loader.install_loader`` (every rank): the datamodule's predict loader then yields only
   the batches not yet written, spread over this attempt's ranks. They are the batches of
   the run's first attempt (its world size, batch size and order, ``remaining_batches``),
   so every sample is predicted in the company it had in an uninterrupted run and the final
   files are byte-identical to that run's, whatever the number of ranks now.
3. ``finalize`` merges the shards of every attempt into dataset order, as for one attempt.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.rundir.files import write_json
from litpredict.rundir.provenance import RemoteEntry
from litpredict.writing.segments import seal
from litpredict.writing.shard_layout import SHARDS, DatasetMeta, Shard, attempt_of, shard_dirs

log = logging.getLogger(__name__)

RECORD = "run.json"
DONE = "done.npy"
# Config keys that decide only how many ranks predict, not what they predict.
RANK_KEYS = ("trainer.devices", "trainer.num_nodes", "trainer.strategy")
CHUNK_ROWS = 1 << 20


@dataclass
class Attempt:
    """This attempt of the run: its number, and what earlier attempts left that it reuses."""

    number: int = 1
    reused: int = 0  # samples committed by earlier attempts, kept
    plan_world_size: int | None = None  # the first attempt's ranks: whose batches to redo
    checkpoint_sha256: str | None = None  # when computed to compare with the record
    discarded: str | None = None  # why earlier attempts' predictions were not reused

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``resume`` while predicting (``predicted`` is known at the end)."""
        found = {"reused": self.reused, "predicted": None, "attempts": self.number}
        return {**found, "discarded": self.discarded} if self.discarded else found


def commit_settings(every_s: Any, every_batches: Any) -> tuple[float | None, int | None]:
    """``resume.commit_every_s`` and ``resume.commit_every_batches``, checked: each a
    positive number (a whole one for batches) or None."""

    def positive(name: str, value: Any, whole: bool) -> Any:
        if value is None:
            return None
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or value <= 0 or (whole and value != int(value)):
            kind = "a positive whole number" if whole else "a positive number of seconds"
            raise PredictionError(
                f"{name}={value!r} is not {kind}", f"set {name} to {kind}, or null"
            )
        return int(value) if whole else float(value)

    return (
        positive("resume.commit_every_s", every_s, whole=False),
        positive("resume.commit_every_batches", every_batches, whole=True),
    )


def read_record(root: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class RunRecord:
    """``.shards/run.json``, written by rank 0: what this run is and which attempt this is.

    The data fingerprint arrives from another thread (``BackgroundFingerprint``), maybe
    before :meth:`start`: a lock keeps the two writers from interleaving.
    """

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.fields: dict[str, Any] = {}
        self._started = False
        self._lock = threading.Lock()

    def start(self, **fields: Any) -> None:
        with self._lock:
            data = self.fields.get("data")
            self.fields.update(fields)
            if data is not None:  # this attempt's own fingerprint came first
                self.fields["data"] = data
            self._started = True
            self._save()

    def set_data(self, entries: list[dict[str, Any]]) -> None:
        """The input data's fingerprint: until it is recorded, nothing can be reused."""
        with self._lock:
            self.fields["data"] = entries
            if self._started:
                self._save()

    def _save(self) -> None:
        if self.enabled:
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(self.root / RECORD, self.fields)


def prepare(
    run_dir: Path, config: dict[str, Any], ckpt_file: Path, remote: RemoteEntry | None = None
) -> Attempt:
    """On rank 0 before predicting: reuse what earlier attempts committed, or clear it.

    ``remote``: how a remote input's current SHA-256 and ETag are read, to compare with the
    recorded fingerprint (``rundir.provenance.data_fingerprint``).
    """
    from litpredict.rundir.ownership import clear_leftovers

    root = Path(run_dir) / SHARDS
    clear_leftovers(run_dir, keep_shards=True)  # staging and temporary files, always
    if not root.is_dir():
        return Attempt()
    record = read_record(root)
    if record is None:
        if shard_dirs(root):
            log.warning("discarding the partial predictions in %s: they have no run record", root)
        _start_over(root)
        return Attempt()
    from litpredict.rundir.hashing import sha256_file

    sha256 = sha256_file(ckpt_file)
    why = _why_not_reused(record, config, Path(run_dir), sha256, remote)
    total = None
    if why is None:
        try:
            total = DatasetMeta.read(root).num_samples
        except (PredictionError, OSError, ValueError, KeyError):
            why = "they did not record the dataset's size"
    if why is not None:
        discarded = why if shard_dirs(root) else None  # else nothing was written to discard
        if discarded:
            log.warning("discarding the partial predictions of an earlier attempt: %s", why)
        _start_over(root)
        return Attempt(checkpoint_sha256=sha256, discarded=discarded)
    number = int(record.get("attempts") or 1) + 1
    done = _committed(root, total)
    reused = int(done.sum())
    if reused == 0:
        _start_over(root)
        return Attempt(number, checkpoint_sha256=sha256)
    np.save(root / DONE, done)
    log.info(
        "resuming: %d of %d samples already written (attempt %d of this run)",
        reused,
        total,
        number,
    )
    return Attempt(number, reused, int(record["plan_world_size"]), sha256)


def _start_over(root: Path) -> None:
    """Nothing is reused: remove ``.shards`` (litpredict's own name, whoever made it: the
    run directory's owner was checked before)."""
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def _why_not_reused(
    record: dict[str, Any],
    config: dict[str, Any],
    run_dir: Path,
    sha256: str,
    remote: RemoteEntry | None = None,
) -> str | None:
    from litpredict.rundir.same_run import differences

    if not isinstance(record.get("plan_world_size"), int) or "config" not in record:
        return "the earlier attempt stopped before it started predicting"
    if record.get("data") is None:
        return "the earlier attempt stopped before its input data was fingerprinted"
    earlier = {
        "checkpoint": {"sha256": record.get("checkpoint_sha256")},
        "config": record["config"],
        "data": record["data"],
    }
    changes = differences(earlier, config, run_dir, sha256, remote, ignored=RANK_KEYS)
    return "; ".join(changes) if changes else None


def _committed(root: Path, total: int) -> np.ndarray:
    """Seal every earlier shard; which of the ``total`` samples they hold."""
    done = np.zeros(total, dtype=bool)
    for directory in shard_dirs(root):
        if not seal(directory):
            continue
        shard = Shard(directory)
        for start in range(0, shard.rows, CHUNK_ROWS):
            index = shard.indices(start, start + CHUNK_ROWS)
            done[index[(index >= 0) & (index < total)]] = True
    return done


def start_record(
    record: RunRecord, attempt: Attempt, config: dict[str, Any], sha256: str, world_size: int
) -> None:
    """Write ``run.json`` for this attempt, before any rank writes a shard."""
    earlier = read_record(record.root) if attempt.reused else None
    record.start(
        checkpoint_sha256=sha256,
        config=config,
        # reused segments were checked against the data as it is now: its record stands
        data=(earlier or {}).get("data"),
        attempts=attempt.number,
        plan_world_size=attempt.plan_world_size or world_size,
        reused=attempt.reused,
    )


def resume_summary(root: Path, shards: list[Shard]) -> dict[str, Any]:
    """The manifest's ``resume``: samples reused, rows this attempt predicted, attempts."""
    record = read_record(root) or {}
    attempt = int(record.get("attempts") or 1)
    this = [s for s in shards if attempt_of(s.directory) in (attempt, None)]
    return {
        "reused": int(record.get("reused") or 0),
        "predicted": sum(s.rows for s in this),
        "attempts": attempt,
    }
