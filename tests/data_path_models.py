"""Models and data for tests of the data path: decode checks, where the time goes."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import Dataset

from litpredict.data import ArrayDataModule
from litpredict.models import LinearRegression
from litpredict.models.base import SupervisedModule, features_of


class ChannelScores(SupervisedModule):
    """Each image's mean per channel, scaled: class scores ``(N, 3)`` for RGB images (the
    class is the dominant colour), one value per image ``(N, 1)`` for grayscale."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * self.scale

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)


class PixelParity(ChannelScores):
    """Predicts the parity of the sum of an image's 8-bit pixel values: a class that any
    change of a single grey level flips, so fast decoding agrees with exact half the time."""

    def predict_step(self, batch, batch_idx):
        pixels = (features_of(batch) * 255).round().to(torch.int64)
        return pixels.sum(dim=(1, 2, 3)) % 2


class SlowStep(LinearRegression):
    """Sleeps ``STEP_SLEEP_S`` in every predict_step: time that must count as ``model_s``."""

    def predict_step(self, batch, batch_idx):
        time.sleep(STEP_SLEEP_S)
        return super().predict_step(batch, batch_idx)


STEP_SLEEP_S = 0.1
ITEM_SLEEP_S = 0.02


class SlowItems(Dataset):
    """``n`` feature rows of 10 values; each takes ``ITEM_SLEEP_S`` to fetch: ``data_s``."""

    def __init__(self, n: int) -> None:
        self.x = torch.randn(n, 10, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> torch.Tensor:
        time.sleep(ITEM_SLEEP_S)
        return self.x[index]


class SlowData(ArrayDataModule):
    """A datamodule of :class:`SlowItems` (no workers: the loop waits for every item)."""

    def __init__(self, n: int = 30, **loader_options) -> None:
        super().__init__(**loader_options)
        self.n = n

    def load_predict(self) -> Dataset:
        return SlowItems(self.n)
