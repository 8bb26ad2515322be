"""Linear regression, 10 features -> 1 target (the seed article's first model)."""

from __future__ import annotations

import torch
from torch import nn

from litpredict.models.base import SupervisedModule


class LinearRegression(SupervisedModule):
    def __init__(self, input_dim: int = 10, output_dim: int = 1, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mae": (output - target).abs().mean()}
