"""The shard folder on disk: its names and layout, the dataset's record, closed shards read
back as memory maps (each rank's rows are appended by :mod:`.shard_writer`).

``<output_dir>/.shards`` holds ``dataset.json`` (the dataset's size, written by rank 0),
``ids.json`` (a JSON list, so no character of an id can shift another) when the dataset
names its samples, ``run.json`` (what the run is, see ``resume``) and one folder per
attempt and rank, ``attempt<k>/rank<r>``. A rank's folder has one ``<key>.bin`` per output
and, unless its rows are in dataset order, ``index.bin`` (int64 dataset indices), rows in
the order they were predicted; ``layout.json`` from the first batch on.

Committed segments: every ``commit_every_s`` seconds (and/or ``commit_every_batches``
batches), on a thread beside the next batches, and at once when the run stops on a
signal or an error, the rank fsyncs its files and appends one line to ``commits.jsonl``
(fsync'd too): the rows so far, and for each file its end offset and the XXH3-64 of its
bytes since the previous commit. Bytes after the last commit, or a
commit whose bytes no longer match their checksum (a kill mid-write, a torn disk
write), are never read: :func:`litpredict.writing.segments.seal` cuts a stopped attempt's
shard back to its last good commit. ``meta.json`` is written when the shard is closed (or
sealed), so a shard without it is incomplete.

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
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.rundir.files import atomic_write, write_json

SHARDS = ".shards"
META = "meta.json"
LAYOUT = "layout.json"
COMMITS = "commits.jsonl"
INDEX = "index"
DATASET_META = "dataset.json"
IDS = "ids.json"
ATTEMPT = "attempt"  # attempt<k>/: the shards the k-th attempt of a run wrote


def attempt_dir(root: Path, attempt: int) -> Path:
    return root / f"{ATTEMPT}{attempt}"


def rank_dir(root: Path, attempt: int, rank: int) -> Path:
    return attempt_dir(root, attempt) / f"rank{rank:05d}"


def attempt_of(shard_dir: Path) -> int | None:
    """The attempt a rank folder belongs to (None: a folder right under ``.shards``)."""
    name = shard_dir.parent.name
    number = name[len(ATTEMPT) :]
    return int(number) if name.startswith(ATTEMPT) and number.isdigit() else None


def fsync_directory(directory: Path) -> None:
    """Make the names in ``directory`` (new files, renames) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def segment_checksum(path: Path, start: int, end: int) -> str:
    """XXH3-64 of ``path``'s bytes ``start:end``, read back (from the page cache, just
    written): what a later attempt checks before it reuses the segment."""
    import xxhash

    digest = xxhash.xxh3_64()
    with open(path, "rb") as file:
        position = start
        while position < end:
            block = os.pread(file.fileno(), min(CHUNK, end - position), position)
            if not block:
                break  # shorter than committed: the checksum will not match
            digest.update(block)
            position += len(block)
    return digest.hexdigest()


CHUNK = 16 << 20


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


def shard_dirs(root: Path) -> list[Path]:
    """Every rank folder under ``root``: ``attempt<k>/rank<r>`` (and ``rank<r>`` right under
    it, as shards written outside a run are laid out)."""
    found = [*root.glob("rank*"), *root.glob(f"{ATTEMPT}*/rank*")]
    return sorted(d for d in found if d.is_dir())


def read_shards(root: Path) -> list[Shard]:
    return [Shard(d) for d in shard_dirs(root)]
