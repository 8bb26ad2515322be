"""LHT's ``MNISTDataModule`` in its shape: train/val/test loaders, no ``predict_dataloader``.

The template downloads MNIST; here the images come from ``<data_dir>/mnist.npz`` (written by
the test), split as the template splits them (``train_val_test_split``, seeded).
"""

from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split


class MNISTDataModule(LightningDataModule):
    def __init__(
        self,
        data_dir: str = "data/",
        train_val_test_split: tuple[int, int, int] = (24, 8, 8),
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.data_train: Dataset | None = None
        self.data_val: Dataset | None = None
        self.data_test: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if not self.data_train and not self.data_val and not self.data_test:
            arrays = np.load(f"{self.hparams.data_dir}/mnist.npz")
            dataset = TensorDataset(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"]))
            self.data_train, self.data_val, self.data_test = random_split(
                dataset=dataset,
                lengths=self.hparams.train_val_test_split,
                generator=torch.Generator().manual_seed(42),
            )

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_train, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_val, batch_size=self.hparams.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.data_test, batch_size=self.hparams.batch_size, shuffle=False)
