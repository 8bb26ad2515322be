"""A model written for LightningCLI (pytorch_lightning.cli): a sub-module chosen by
``--model.net.class_path``, no predict_step; and a plain ``save_hyperparameters()`` one with
its own predict_step."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, in_features: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class CLIRegressor(pl.LightningModule):
    def __init__(self, net: nn.Module, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class PlainRegressor(pl.LightningModule):
    """``save_hyperparameters()`` of plain values; its own predict_step gets the batch as is."""

    def __init__(self, in_features: int = 4, hidden: int = 6, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def predict_step(self, batch, batch_idx):
        x, _y = batch  # labelled data: the whole (x, y) batch, as Lightning gives it
        return self(x) + 100.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class NoHyperparameters(pl.LightningModule):
    """No save_hyperparameters: it rebuilds from its own defaults, not model=linear's."""

    def __init__(self, input_dim: int = 4, output_dim: int = 2, lr: float = 0.1) -> None:
        super().__init__()
        self.lr = lr
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y.expand(-1, 2))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)
