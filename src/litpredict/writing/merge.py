"""Merge per-rank shards into dense arrays in dataset order, checking every sample is there.

The path is decided once, from the shards' metadata: one shard holding samples 0..N-1
in order (a single process) is already the final ``.npy`` of each output and is renamed,
its hashes known from writing; anything else is scattered row by row to its index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.writing.shard_layout import Shard, npy_header

CHUNK_ROWS = 1 << 18

Layout = dict[str, tuple[np.dtype, tuple[int, ...]]]


@dataclass
class Merged:
    """Every output as ``staging/<key>.npy`` in dataset order, and what the shards said of it."""

    arrays: dict[str, np.ndarray]  # read-only memory maps of the staged files
    kind: str  # what predict_step returned: "tensor", "tuple" or "dict"
    sha256: dict[Path, str]  # staged files hashed while they were written


def merge_shards(shards: list[Shard], num_samples: int, staging: Path) -> Merged:
    """Stage every output under ``staging`` in dataset order (see the module docstring)."""
    kind, layout = _kind_and_layout(shards)
    staging.mkdir(parents=True, exist_ok=True)
    whole = _whole_npy_shard(shards, num_samples)
    if whole is not None:
        for key in layout:
            os.replace(whole.path(key), staging / f"{key}.npy")
        hashes = {staging / f"{key}.npy": digest for key, digest in whole.sha256.items()}
    else:
        _scatter(shards, num_samples, layout, staging)
        hashes = {}
    arrays = {key: np.load(staging / f"{key}.npy", mmap_mode="r") for key in layout}
    return Merged(arrays, kind, hashes)


def _kind_and_layout(shards: list[Shard]) -> tuple[str, Layout]:
    """The one output kind and layout every rank with rows wrote."""
    filled = [s for s in shards if s.rows]
    if not filled:
        raise PredictionError("no predictions were written", "check the predict dataloader")
    first = filled[0]
    for other in filled[1:]:
        if (other.kind, other.layout) != (first.kind, first.layout):
            raise PredictionError(
                f"ranks wrote different outputs: {first.kind} {first.layout} and "
                f"{other.kind} {other.layout}",
                "return the same keys, dtype and per-sample shape on every rank",
            )
    return first.kind, first.layout


def _whole_npy_shard(shards: list[Shard], num_samples: int) -> Shard | None:
    """The one shard whose files already are the final ``.npy`` files, if there is one."""
    filled = [s for s in shards if s.rows]
    if len(filled) == 1 and filled[0].is_whole_npy(num_samples):
        return filled[0]
    return None


def _preallocated_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.memmap:
    """A writable memory map of a new ``.npy`` whose blocks are reserved on disk first.

    ``open_memmap`` makes a sparse file: on a full disk, writing through the map kills
    the process with SIGBUS. Reserving the blocks makes a full disk an ``OSError`` here.
    """
    header = npy_header(dtype, shape)
    size = len(header) + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    with open(path, "wb") as file:
        file.write(header)
        file.flush()
        if size > len(header):
            os.posix_fallocate(file.fileno(), 0, size)
    return np.lib.format.open_memmap(path, "r+")


def _scatter(shards: list[Shard], num_samples: int, layout: Layout, staging: Path) -> None:
    """Write each shard's rows at their dataset index.

    Rows repeated by a padding sampler land on the same index, so duplicates drop
    out; a count of distinct indices below ``num_samples`` is an error.
    """
    merged = {
        key: _preallocated_npy(staging / f"{key}.npy", dtype, (num_samples, *shape))
        for key, (dtype, shape) in layout.items()
    }
    seen = np.zeros(num_samples, dtype=bool)
    for shard in shards:
        for start in range(0, shard.rows, CHUNK_ROWS):
            index = shard.indices(start, start + CHUNK_ROWS)
            if index.min() < 0 or index.max() >= num_samples:
                raise PredictionError(
                    f"prediction indices outside the dataset of {num_samples} samples",
                    "the predict dataloader must sample from the predict dataset only",
                )
            for key, out in merged.items():
                out[index] = shard.array(key)[start : start + CHUNK_ROWS]
            seen[index] = True
    found = int(seen.sum())
    if found != num_samples:
        missing = np.flatnonzero(~seen)[:5].tolist()
        raise PredictionError(
            f"{num_samples - found} of {num_samples} samples have no prediction (first: {missing})",
            "make sure every rank iterates its whole predict dataloader (no limit_predict_batches)",
        )
    for out in merged.values():
        out.flush()
