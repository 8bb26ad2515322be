"""The floor: plain torch slices of the input, forward, np.save; nothing else."""

from __future__ import annotations

import numpy as np

from bench.approach import Approach, load_model


def worker_floor(data: str, ckpt: str, batch: int, out: str, mmap_mode: str | None = "r") -> None:
    """The floor: input memory-mapped (``mmap_mode=None`` reads it whole), torch slices, forward."""
    import torch

    _, model = load_model(ckpt)
    x = np.load(data, mmap_mode=mmap_mode)
    result = None
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            y = model.predict_step(torch.from_numpy(np.array(x[start : start + batch])), 0)
            if result is None:
                result = torch.empty((len(x), *y.shape[1:]), dtype=y.dtype)
            result[start : start + len(y)] = y
    np.save(out, result.numpy())


def worker_floor_load(data: str, ckpt: str, batch: int, out: str) -> None:
    """The floor with a plain ``np.load``: the whole input is read into memory first."""
    worker_floor(data, ckpt, batch, out, mmap_mode=None)


FLOOR = Approach("floor", worker=worker_floor)
FLOOR_LOAD = Approach("floor-load", worker=worker_floor_load)
