"""Shared training and prediction steps for litpredict's models."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


def features_of(batch: Any) -> torch.Tensor:
    """The model input of a batch: ``x`` itself, or the first item of ``(x, y)``."""
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


class SupervisedModule(pl.LightningModule):
    """Trains on ``(x, y)`` batches with :meth:`loss`; predicts from ``(x, y)`` or ``x``.

    Subclasses define ``forward``, ``loss`` and ``metrics``; hyperparameters are
    saved as plain Python values so checkpoints load with ``weights_only=True``.
    """

    lr: float

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        output = self(x)
        self.log("val_loss", self.loss(output, y), prog_bar=True)
        for name, value in self.metrics(output, y).items():
            self.log(f"val_{name}", value, prog_bar=True)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self(features_of(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
