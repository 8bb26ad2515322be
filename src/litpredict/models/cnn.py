"""A small CNN for 3x32x32 images -> 10 classes (the seed article's second model)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from litpredict.models.base import SupervisedModule, features_of


class CNNClassifier(SupervisedModule):
    """Predicts the class id per image, or class probabilities with ``probabilities=True``.

    ``probabilities`` and ``channels_last`` only change how prediction runs, not the
    weights, so they are left out of the saved hyperparameters: a checkpoint trained
    one way predicts either way.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 16,
        lr: float = 2e-3,
        probabilities: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["probabilities", "channels_last"])
        self.probabilities = probabilities
        self.channels_last = channels_last
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 16, 64), nn.ReLU(), nn.Linear(64, num_classes)
        )

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.classifier(self.features(x))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)

    def metrics(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"accuracy": (output.argmax(dim=1) == target).float().mean()}

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits = self(features_of(batch))
        if self.probabilities:
            return logits.softmax(dim=1)
        return logits.argmax(dim=1)
