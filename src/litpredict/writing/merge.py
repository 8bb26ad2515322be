"""Merge per-rank shards into dense arrays in dataset order, checking every sample is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from litpredict.errors import PredictionError
from litpredict.writing.shards import INDEX, Shard

CHUNK_ROWS = 1 << 18


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
    """Scatter each shard's rows to their dataset index in ``staging/<key>.npy``.

    Rows repeated by a padding sampler land on the same index, so duplicates drop
    out; a count of distinct indices below ``num_samples`` is an error.
    """
    layout = _layout(shards)
    staging.mkdir(parents=True, exist_ok=True)
    merged = {
        key: np.lib.format.open_memmap(staging / f"{key}.npy", "w+", dtype, (num_samples, *shape))
        for key, (dtype, shape) in layout.items()
    }
    seen = np.zeros(num_samples, dtype=bool)
    for shard in shards:
        indices = shard.array(INDEX)
        for start in range(0, shard.rows, CHUNK_ROWS):
            index = np.asarray(indices[start : start + CHUNK_ROWS])
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
    return merged
