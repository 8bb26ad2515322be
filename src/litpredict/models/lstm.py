"""An LSTM sequence model, 5 inputs -> 3 outputs per step (the seed article's third model)."""

from __future__ import annotations

import torch
from torch import nn

from litpredict.models.base import SupervisedModule


class LSTMSequence(SupervisedModule):
    def __init__(
        self,
        input_size: int = 5,
        hidden_size: int = 128,
        output_size: int = 3,
        num_layers: int = 1,
        lr: float = 5e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, steps, input_size) -> (batch, steps, output_size)."""
        hidden, _ = self.lstm(x)
        return self.head(hidden)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mae": (output - target).abs().mean()}
