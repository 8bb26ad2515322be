"""A plain DataLoader loop, the throughput reference for the CNN and LSTM workloads."""

from __future__ import annotations

import numpy as np

from bench.approach import Approach, load_model


def worker_loop(data: str, ckpt: str, batch: int, out: str) -> None:
    """A plain DataLoader loop: per-sample ``__getitem__`` and collate, forward, torch.cat."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    _, model = load_model(ckpt)
    loader = DataLoader(TensorDataset(torch.from_numpy(np.load(data))), batch_size=batch)
    with torch.inference_mode():
        outputs = [model.predict_step(x, i) for i, (x,) in enumerate(loader)]
    np.save(out, torch.cat(outputs).numpy())


LOOP = Approach("loop", worker=worker_loop)
