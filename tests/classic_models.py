"""The regressor of ``unified_models`` on the ``pytorch_lightning`` package, as its docs teach."""

import pytorch_lightning as pl
import torch
import torch.nn as nn


class Regressor(pl.LightningModule):
    def __init__(self, input_dim: int = 10, hidden: int = 8, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(input_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def predict_step(self, batch, batch_idx):
        x, _ = batch
        return self(x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
