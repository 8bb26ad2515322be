"""Merge per-rank shards into dense arrays in dataset order, checking every sample is there."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from litpredict.errors import PredictionError
from litpredict.writing.shards import Shard

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
    order: its files are copied behind a ``.npy`` header, sequentially and without
    mapping them. Anything else is scattered row by row to its dataset index.
    """
    layout = _layout(shards)
    staging.mkdir(parents=True, exist_ok=True)
    filled = [s for s in shards if s.rows]
    if len(filled) == 1 and filled[0].sequential and filled[0].rows == num_samples:
        for key, (dtype, shape) in layout.items():
            _copy_to_npy(filled[0].path(key), staging / f"{key}.npy", dtype, (num_samples, *shape))
    else:
        _scatter(shards, num_samples, layout, staging)
    return {key: np.load(staging / f"{key}.npy", mmap_mode="r") for key in layout}


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _copy_to_npy(source: Path, target: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if source.stat().st_size != size:
        raise PredictionError(
            f"the prediction shard {str(source)!r} has {source.stat().st_size} bytes, "
            f"expected {size}",
            "re-run the prediction",
        )
    with source.open("rb") as src, target.open("wb") as dst:
        dst.write(_npy_header(dtype, shape))
        dst.flush()
        _copy_file(src, dst, size)


def _copy_file(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """Append ``size`` bytes of ``src`` to ``dst``: in the kernel where it can, else chunked."""
    copied = 0
    try:
        while copied < size:
            step = os.copy_file_range(src.fileno(), dst.fileno(), size - copied)
            if step == 0:
                break
            copied += step
    except (AttributeError, OSError):
        pass
    if copied < size:
        src.seek(copied)
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
