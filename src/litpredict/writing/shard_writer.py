"""One rank's shard written: its batches appended through a buffer, the SHA-256 of an
in-order shard taken as it is written, and commits (fsync'd files, a checksummed line in
``commits.jsonl``) on a thread beside the next batches. The folder's layout and how a
closed shard is read back: :mod:`.shard_layout`."""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.rundir.files import write_json
from litpredict.rundir.hashing import ThreadedDigest
from litpredict.writing.shard_layout import (
    COMMITS,
    INDEX,
    LAYOUT,
    META,
    fsync_directory,
    npy_header,
    segment_checksum,
)

# Batches are gathered in memory and written a MiB at a time: a write() of each
# 123 KB LSTM batch took ~30 us of the writer's time here, a MiB once in 8 batches less.
WRITE_BUFFER = 1 << 20


class ShardWriter:
    """Appends one rank's batches; ``header_rows`` is the dataset's size.

    ``commit_every_s`` / ``commit_every_batches``: how often :meth:`commit` runs on its own
    after a batch (None: only when asked and at :meth:`close`).
    """

    def __init__(
        self,
        directory: Path,
        header_rows: int,
        commit_every_s: float | None = None,
        commit_every_batches: int | None = None,
    ) -> None:
        self.directory = directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.header_rows = header_rows
        self.rows = 0
        self.kind: str | None = None  # what predict_step returns; recorded with each commit
        self.sequential = True  # rows so far are samples 0..rows-1; no index.bin yet
        self.layout: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.header_bytes: dict[str, int] = {}
        self.row_bytes: dict[str, int] = {}
        self.files: dict[str, BinaryIO] = {}
        self.digests: dict[str, ThreadedDigest] = {}  # one per output key, while sequential
        self.commit_every_s = commit_every_s
        self.commit_every_batches = commit_every_batches
        self.committed_rows = 0
        self._committed_ends: dict[str, int] = {}
        self._commits: BinaryIO | None = None
        self._committer: threading.Thread | None = None
        self._pending: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._idle = threading.Event()  # no commit is being written
        self._idle.set()
        self._committer_error: BaseException | None = None
        self._batches_since_commit = 0
        self._last_commit = time.monotonic()

    def append(self, indices: range | np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Append one batch: ``indices`` (a range or int64 array) and one array per output."""
        layout = {key: (a.dtype.str, a.shape[1:]) for key, a in arrays.items()}
        if not self.layout:
            self._open(layout)
        elif layout != self.layout:
            raise PredictionError(
                f"batch predictions changed layout: first {self.layout}, now {layout}",
                "return outputs of the same keys, dtype and per-sample shape from every "
                "predict_step (pad variable-length outputs)",
            )
        for key, array in arrays.items():
            if len(array) != len(indices):
                raise PredictionError(
                    f"output {key!r} has {len(array)} rows for a batch of {len(indices)} samples",
                    "return one row per sample from predict_step",
                )
            self._write(key, np.ascontiguousarray(array))
        self._append_indices(indices)
        self.rows += len(indices)
        self._batches_since_commit += 1
        if self._commit_due():
            self._commit_in_background()

    def _commit_due(self) -> bool:
        every = self.commit_every_batches
        if every is not None and self._batches_since_commit >= every:
            return True
        every_s = self.commit_every_s
        return every_s is not None and time.monotonic() - self._last_commit >= every_s

    def _open(self, layout: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        self.layout = layout
        for key, (dtype, shape) in layout.items():
            # Kept open across batches and closed in close().
            path = self.directory / f"{key}.bin"
            self.files[key] = open(path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115
            header = npy_header(np.dtype(dtype), (self.header_rows, *shape))
            self.header_bytes[key] = len(header)
            self.row_bytes[key] = np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))
            self._write(key, header)
        write_json(
            self.directory / LAYOUT,
            {
                "layout": {k: [d, list(s)] for k, (d, s) in layout.items()},
                "header_rows": self.header_rows,
                "header_bytes": self.header_bytes,
            },
        )

    def _write(self, key: str, data: bytes | np.ndarray) -> None:
        self.files[key].write(data)
        if self.sequential:  # may become the final file
            if key not in self.digests:
                self.digests[key] = ThreadedDigest("sha256")
            self.digests[key].update(data)

    def _continues(self, indices: range | np.ndarray) -> bool:
        """Whether ``indices`` are exactly the samples that follow the rows so far."""
        n = len(indices)
        if n == 0:
            return True
        if int(indices[0]) != self.rows or int(indices[-1]) != self.rows + n - 1:
            return False
        return isinstance(indices, range) or bool(np.all(np.diff(indices) == 1))

    def _append_indices(self, indices: range | np.ndarray) -> None:
        if self.sequential and self._continues(indices):
            return
        if self.sequential:
            # First batch out of order: write down the indices the order implied so far.
            self.sequential = False
            self.digests.clear()
            path = self.directory / f"{INDEX}.bin"
            self.files[INDEX] = open(path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115
            self.files[INDEX].write(np.arange(self.rows, dtype=np.int64))
        self.files[INDEX].write(np.asarray(indices, dtype=np.int64))

    def _ends(self) -> dict[str, int]:
        """Each file's length after the last whole batch (a batch cut short is not counted)."""
        ends = {k: self.header_bytes[k] + self.rows * self.row_bytes[k] for k in self.layout}
        if not self.sequential:
            ends[INDEX] = self.rows * 8
        return ends

    def commit(self) -> bool:
        """Make every whole batch so far durable, now: fsync, then a commit line.

        What a stopping run calls (a signal, an error). False when there was nothing new
        to commit. Safe after an interrupt cut a batch short: only the rows counted in
        ``rows`` are committed.
        """
        self._wait_for_committer()
        snapshot = self._snapshot()
        if snapshot is None:
            return False
        self._write_commit(snapshot)
        self._raise_committer_error()
        return True

    def _commit_in_background(self) -> None:
        """The periodic commit: the files' buffers are flushed here, the fsyncs, the
        checksums and the commit line run on the committer thread while the next batches
        are predicted. One commit at a time: one due while the last still runs (a disk
        slower than the batches) waits for the next batch, the predicting thread never
        waits."""
        if not self._idle.is_set():
            return
        self._raise_committer_error()
        snapshot = self._snapshot()
        if snapshot is None:
            return
        if self._committer is None:  # started once, on the first commit
            self._committer = threading.Thread(
                target=self._run_committer, name="shard-commit", daemon=True
            )
            self._committer.start()
        self._idle.clear()
        self._pending.put(snapshot)

    def _run_committer(self) -> None:
        while (snapshot := self._pending.get()) is not None:
            self._write_commit(snapshot)
            self._idle.set()

    def _snapshot(self) -> dict[str, Any] | None:
        """What the next commit covers: the whole batches so far, their buffers flushed."""
        self._batches_since_commit = 0
        self._last_commit = time.monotonic()
        if not self.layout or self.rows == self.committed_rows:
            return None
        for file in self.files.values():
            file.flush()
        self.committed_rows = self.rows
        return {
            "rows": self.rows,
            "kind": self.kind,
            "sequential": self.sequential,
            "ends": self._ends(),
            "fds": {key: file.fileno() for key, file in self.files.items()},
        }

    def _write_commit(self, snapshot: dict[str, Any]) -> None:
        """fsync the files, checksum the new bytes, append and fsync the commit line."""
        try:
            ends = snapshot["ends"]
            for key in ends:
                os.fsync(snapshot["fds"][key])
            files = {}
            for key, end in ends.items():
                start = self._committed_ends.get(key, 0)
                files[key] = [end, segment_checksum(self.directory / f"{key}.bin", start, end)]
            line = {k: snapshot[k] for k in ("rows", "kind", "sequential")}
            record = json.dumps({**line, "files": files}) + "\n"
            first = self._commits is None
            if first:
                self._commits = open(self.directory / COMMITS, "ab")  # noqa: SIM115
            self._commits.write(record.encode())
            self._commits.flush()
            os.fsync(self._commits.fileno())
            if first:  # the files' names, and the shard folder's own
                fsync_directory(self.directory)
                fsync_directory(self.directory.parent)
            self._committed_ends = ends
        except BaseException as error:  # raised on the caller's thread by the next commit
            self._committer_error = error

    def _wait_for_committer(self) -> None:
        self._idle.wait()

    def _stop_committer(self) -> None:
        if self._committer is not None:
            self._pending.put(None)
            self._committer.join()
            self._committer = None

    def _raise_committer_error(self) -> None:
        error, self._committer_error = self._committer_error, None
        if error is not None:
            raise error

    def close(self, kind: str | None, stages: dict[str, float] | None = None) -> None:
        """Close the files and write ``meta.json``: the shard now counts as finished.

        ``stages``: where the rank's time went (:mod:`litpredict.writing.stages`). No last
        commit: the run merges the shard next, and a run stopped from here on predicts
        again at most what the last periodic commit did not cover.
        """
        self.kind = kind if kind is not None else self.kind
        self._stop_committer()
        self._raise_committer_error()
        for file in self.files.values():
            file.close()
        if self._commits is not None:
            self._commits.close()
        digests = {key: digest.hexdigest() for key, digest in self.digests.items()}
        meta = {
            "rows": self.rows,
            "kind": self.kind,
            "layout": {k: [d, list(s)] for k, (d, s) in self.layout.items()},
            "sequential": self.sequential,
            "header_rows": self.header_rows,
            "header_bytes": self.header_bytes,
            "sha256": {k: digests[k] for k in self.layout if k in digests},
            "stages": stages,
        }
        write_json(self.directory / META, meta)
