"""Merge per-rank shards into dense arrays in dataset order, checking every sample is there."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from litpredict.errors import PredictionError
from litpredict.writing.shards import Shard, npy_header

CHUNK_ROWS = 1 << 18
COPY_CHUNK = 1 << 24


def _layout(shards: list[Shard]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    layouts = [s.layout for s in shards if s.rows]
    if not layouts:
        raise PredictionError("no predictions were written", "check the predict dataloader")
    for other in layouts[1:]:
        if other != layouts[0]:
            raise PredictionError(
                f"ranks wrote different outputs: {layouts[0]} and {other}",
                "return the same keys, dtype and per-sample shape on every rank",
            )
    return layouts[0]


def merge_shards(shards: list[Shard], num_samples: int, staging: Path) -> dict[str, np.ndarray]:
    """``staging/<key>.npy`` for every output, rows in dataset order; read-only memory maps.

    One shard holding samples 0..N-1 in order (a single process) is already in dataset
    order: its files are renamed (they start with the .npy header) or copied behind a
    header, without mapping them. Anything else is scattered row by row to its index.
    """
    layout = _layout(shards)
    staging.mkdir(parents=True, exist_ok=True)
    whole = _in_order(shards, num_samples)
    for key, (dtype, shape) in layout.items():
        target = staging / f"{key}.npy"
        if whole is not None and whole.is_whole_npy(num_samples):
            os.replace(whole.path(key), target)
        elif whole is not None:
            offset = whole.header_bytes.get(key, 0)
            _copy_to_npy(whole.path(key), offset, target, dtype, (num_samples, *shape))
    if whole is None:
        _scatter(shards, num_samples, layout, staging)
    return {key: np.load(staging / f"{key}.npy", mmap_mode="r") for key in layout}


def streamed_hashes(shards: list[Shard], num_samples: int, staging: Path) -> dict[Path, str]:
    """SHA-256 of the merged files that are renamed shard files, hashed while written."""
    whole = _in_order(shards, num_samples)
    if whole is None or not whole.is_whole_npy(num_samples):
        return {}
    return {staging / f"{key}.npy": digest for key, digest in whole.sha256.items()}


def _in_order(shards: list[Shard], num_samples: int) -> Shard | None:
    """The one shard holding every sample in dataset order, if there is one."""
    filled = [s for s in shards if s.rows]
    if len(filled) == 1 and filled[0].sequential and filled[0].rows == num_samples:
        return filled[0]
    return None


def _copy_to_npy(
    source: Path, offset: int, target: Path, dtype: np.dtype, shape: tuple[int, ...]
) -> None:
    """Write ``target`` as the .npy header of ``shape`` and ``source``'s rows after ``offset``."""
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = source.stat().st_size - offset
    if found != size:
        raise PredictionError(
            f"the prediction shard {str(source)!r} holds {found} bytes of rows, expected {size}",
            "re-run the prediction",
        )
    with source.open("rb") as src, target.open("wb") as dst:
        dst.write(npy_header(dtype, shape))
        dst.flush()
        src.seek(offset)
        _copy_file(src, dst, size)


def _copy_file(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """Append ``size`` bytes from ``src``'s position to ``dst``: in the kernel where it can."""
    start, copied = src.tell(), 0
    with contextlib.suppress(AttributeError, OSError):
        while copied < size:
            step = os.copy_file_range(src.fileno(), dst.fileno(), size - copied)
            if step == 0:
                break
            copied += step
    if copied < size:
        src.seek(start + copied)
        dst.seek(0, os.SEEK_END)
        shutil.copyfileobj(src, dst, COPY_CHUNK)


def _scatter(
    shards: list[Shard],
    num_samples: int,
    layout: dict[str, tuple[np.dtype, tuple[int, ...]]],
    staging: Path,
) -> None:
    """Write each shard's rows at their dataset index.

    Rows repeated by a padding sampler land on the same index, so duplicates drop
    out; a count of distinct indices below ``num_samples`` is an error.
    """
    merged = {
        key: np.lib.format.open_memmap(staging / f"{key}.npy", "w+", dtype, (num_samples, *shape))
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
