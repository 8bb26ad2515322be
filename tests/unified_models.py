"""Models and a datamodule written as Lightning's docs teach them today: ``import lightning as L``.

No litpredict in sight: ``self.save_hyperparameters()``, ``(x, y)`` batches, a
``predict_step`` that ignores the labels. Trained by ``L.Trainer`` in the tests.
"""

import lightning as L
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(L.LightningModule):
    def __init__(self, input_dim: int = 10, hidden: int = 8, lr: float = 0.01):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(input_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def predict_step(self, batch, batch_idx):
        x, _ = batch
        return self(x)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def regression_data(n: int = 96, input_dim: int = 10, seed: int = 0):
    """``(x, y)`` with ``y = x.sum(1) + noise``, the same for the same ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, input_dim, generator=generator)
    return x, x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=generator)


class RegressionData(L.LightningDataModule):
    """A user's own ``lightning`` datamodule: random regression data from a seed."""

    def __init__(self, n: int = 96, input_dim: int = 10, batch_size: int = 32, seed: int = 0):
        super().__init__()
        self.n, self.input_dim, self.batch_size, self.seed = n, input_dim, batch_size, seed

    def setup(self, stage: str) -> None:
        self.data = TensorDataset(*regression_data(self.n, self.input_dim, self.seed))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size)
