"""The shard folder: each rank's rows appended batch by batch, read back as memory maps.

``<output_dir>/.shards`` holds ``dataset.json`` (the dataset's size, written by rank 0),
``ids.json`` (a JSON list, so no character of an id can shift another) when the dataset
names its samples, and one folder per rank. A rank's
folder has one ``<key>.bin`` per output and, unless its rows are in dataset order,
``index.bin`` (int64 dataset indices), rows in the order they were predicted.
``meta.json`` is written when the shard is closed, so a shard without it is incomplete.

Each ``<key>.bin`` starts with the ``.npy`` header of the whole dataset's array. A shard
whose rows are samples 0, 1, 2, ... in order (one process predicting in dataset order)
is ``sequential``: row i is sample i, and the SHA-256 of each file is computed as it is
written, on a second thread that overlaps the next batch. A sequential shard of every
sample is then the final ``.npy`` file, already hashed, so finishing a run neither
copies nor re-reads its predictions.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.rundir.files import atomic_write, write_json
from litpredict.rundir.hashing import ThreadedDigest

SHARDS = ".shards"
META = "meta.json"
INDEX = "index"
DATASET_META = "dataset.json"
IDS = "ids.json"
# Batches are gathered in memory and written a MiB at a time: a write() of each
# 123 KB LSTM batch took ~30 us of the writer's time here, a MiB once in 8 batches less.
WRITE_BUFFER = 1 << 20


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (version 1.0) header of a C-ordered array of ``dtype`` and ``shape``."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


@dataclass(frozen=True)
class DatasetMeta:
    """What finalize needs to know of the dataset: its size, its sample ids, if any, and
    what it says of how it was read (its ``run_record``, for the manifest)."""

    num_samples: int
    ids: list[str] | None
    record: dict = field(default_factory=dict)

    def write(self, root: Path) -> None:
        if self.ids is not None:
            atomic_write(root / IDS, json.dumps(self.ids))
        meta = {"num_samples": self.num_samples, "has_ids": self.ids is not None}
        write_json(root / DATASET_META, {**meta, "record": self.record})

    @classmethod
    def read(cls, root: Path) -> DatasetMeta:
        path = root / DATASET_META
        if not path.is_file():  # no rank ran a batch: rank 0 writes it when it starts predicting
            raise PredictionError("no predictions were written", "check the predict dataloader")
        meta = json.loads(path.read_text())
        ids = json.loads((root / IDS).read_text(encoding="utf-8")) if meta["has_ids"] else None
        if meta["num_samples"] < 1:
            raise PredictionError(
                "the predict dataset has 0 samples", "point the datamodule at data with samples"
            )
        if ids is not None and len(ids) != meta["num_samples"]:
            raise PredictionError(
                f"{len(ids)} sample ids were recorded for {meta['num_samples']} samples",
                "give the dataset's sample_ids one id per sample, and re-run",
            )
        return cls(meta["num_samples"], ids, meta.get("record") or {})


class ShardWriter:
    """Appends one rank's batches; ``header_rows`` is the dataset's size."""

    def __init__(self, directory: Path, header_rows: int) -> None:
        self.directory = directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.header_rows = header_rows
        self.rows = 0
        self.sequential = True  # rows so far are samples 0..rows-1; no index.bin yet
        self.layout: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.header_bytes: dict[str, int] = {}
        self.files: dict[str, BinaryIO] = {}
        self.digests: dict[str, ThreadedDigest] = {}  # one per output key, while sequential

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

    def _open(self, layout: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        self.layout = layout
        for key, (dtype, shape) in layout.items():
            # Kept open across batches and closed in close().
            path = self.directory / f"{key}.bin"
            self.files[key] = open(path, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115
            header = npy_header(np.dtype(dtype), (self.header_rows, *shape))
            self.header_bytes[key] = len(header)
            self._write(key, header)

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

    def close(self, kind: str | None, stages: dict[str, float] | None = None) -> None:
        """Close the files and write ``meta.json``: from now on the shard counts as finished.

        ``stages``: where the rank's time went (:mod:`litpredict.writing.stages`).
        """
        for file in self.files.values():
            file.close()
        digests = {key: digest.hexdigest() for key, digest in self.digests.items()}
        meta = {
            "rows": self.rows,
            "kind": kind,
            "layout": {k: [d, list(s)] for k, (d, s) in self.layout.items()},
            "sequential": self.sequential,
            "header_rows": self.header_rows,
            "header_bytes": self.header_bytes,
            "sha256": {k: digests[k] for k in self.layout if k in digests},
            "stages": stages,
        }
        write_json(self.directory / META, meta)


class Shard:
    """A closed shard, read lazily."""

    def __init__(self, directory: Path) -> None:
        meta_path = directory / META
        if not meta_path.is_file():
            raise PredictionError(
                f"the prediction shard {str(directory)!r} was never closed (a rank did not finish)",
                "re-run the prediction",
            )
        meta = json.loads(meta_path.read_text())
        self.directory = directory
        self.rows: int = meta["rows"]
        self.kind: str | None = meta["kind"]
        self.layout = {k: (np.dtype(d), tuple(s)) for k, (d, s) in meta["layout"].items()}
        self.sequential: bool = meta["sequential"]
        self.header_rows: int = meta["header_rows"]
        self.header_bytes: dict[str, int] = meta["header_bytes"]
        self.sha256: dict[str, str] = meta["sha256"]
        self.stages: dict[str, float] | None = meta.get("stages")

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.bin"

    def is_whole_npy(self, num_samples: int) -> bool:
        """Whether each ``<key>.bin`` is already the ``.npy`` of all ``num_samples`` in order."""
        return self.sequential and self.rows == num_samples == self.header_rows

    def array(self, key: str) -> np.ndarray:
        if key == INDEX and self.sequential:
            return np.arange(self.rows, dtype=np.int64)
        dtype, shape = (np.dtype(np.int64), ()) if key == INDEX else self.layout[key]
        if self.rows == 0:
            return np.empty((0, *shape), dtype)
        offset = self.header_bytes.get(key, 0)  # index.bin has no header
        return np.memmap(self.path(key), dtype, "r", offset=offset, shape=(self.rows, *shape))

    def indices(self, start: int, stop: int) -> np.ndarray:
        """Dataset indices of rows ``start:stop``."""
        stop = min(stop, self.rows)
        if self.sequential:
            return np.arange(start, stop, dtype=np.int64)
        return np.asarray(self.array(INDEX)[start:stop])


def read_shards(root: Path) -> list[Shard]:
    return [Shard(d) for d in sorted(root.glob("rank*")) if d.is_dir()]
