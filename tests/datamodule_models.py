"""Users' own datamodules and models, one of each on each Lightning package (issue #15).

No litpredict in here: what a user's project holds. ``ClassicData`` takes ``**kwargs``
(a replaced group's keys would reach it silently); ``ResNetClassifier`` has no
predict_step, and wraps a torchvision ResNet built with ``weights=None`` (never a download).
"""

import lightning as L
import pytorch_lightning as pl
import torch
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset


def table(n: int, seed: int, input_dim: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, input_dim, generator=generator)
    return x, x.sum(dim=1, keepdim=True)


class ClassicData(pl.LightningDataModule):
    """A ``pytorch_lightning`` datamodule that takes any keyword: it records them all."""

    def __init__(self, n: int = 30, seed: int = 1, **kwargs):
        super().__init__()
        self.n, self.seed, self.extra = n, seed, kwargs

    def setup(self, stage: str) -> None:
        self.data = TensorDataset(*table(self.n, self.seed))

    def predict_dataloader(self):
        return DataLoader(self.data, batch_size=8)


class NamedSamples(Dataset):
    """A map-style dataset that names its samples (the ``sample_ids`` protocol)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y
        self.sample_ids = [f"row-{i}" for i in range(len(x))]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


class DescribedData(L.LightningDataModule):
    """A ``lightning`` datamodule implementing both protocols: input_files and sample_ids."""

    def __init__(self, path: str, batch_size: int = 8):
        super().__init__()
        self.path, self.batch_size = path, batch_size

    @property
    def input_files(self) -> list[str]:
        return [self.path]

    def setup(self, stage: str) -> None:
        x = torch.load(self.path)
        self.data = NamedSamples(x, x.sum(dim=1, keepdim=True))

    def predict_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size)


class Stream(IterableDataset):
    def __iter__(self):
        for i in range(5):
            yield torch.full((10,), float(i)), torch.zeros(1)


class StreamData(pl.LightningDataModule):
    def predict_dataloader(self):
        return DataLoader(Stream(), batch_size=2)


class LabelsBeside(pl.LightningModule):
    """A predict_step returning per-sample strings beside a tensor."""

    def __init__(self, input_dim: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(input_dim, 1)

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def predict_step(self, batch, batch_idx):
        score = self.net(batch[0])
        return {"label": ["high" if s > 0 else "low" for s in score], "score": score}


class ResNetClassifier(L.LightningModule):
    """A torchvision ResNet as many projects wrap it: no predict_step of its own."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3):
        super().__init__()
        self.save_hyperparameters()
        self.net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
        if in_channels != 3:
            self.net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
