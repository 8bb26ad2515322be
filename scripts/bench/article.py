"""The seed article's recipe: TensorDataset + DataLoader + Trainer.predict + torch.cat."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.approach import Approach, load_model


def worker_article(data: str, ckpt: str, batch: int, out: str) -> None:
    """The seed article: TensorDataset + DataLoader + Trainer.predict + torch.cat."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    cls, _ = load_model(ckpt)
    model = cls.load_from_checkpoint(ckpt, map_location="cpu")
    loader = DataLoader(TensorDataset(torch.from_numpy(np.load(data))), batch_size=batch)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(Path(out).parent),
    )  # fmt: skip
    predictions = trainer.predict(model, loader)
    np.save(out, torch.cat(predictions).numpy())


ARTICLE = Approach("article", worker=worker_article)
