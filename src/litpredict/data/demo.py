"""Embedded demo data: generated from ``seed``, learnable, no download.

Each demo has train/val splits for ``train.py`` and a separate labelled predict split,
so the demo's predictions can be scored.
"""

from __future__ import annotations

import numpy as np

from litpredict.data.arrays import ArrayDataset
from litpredict.data.base import ArrayDataModule

_SPLITS = {"train": 0, "val": 1, "predict": 2}


class _DemoDataModule(ArrayDataModule):
    def __init__(
        self,
        seed: int = 0,
        n_train: int = 4096,
        n_val: int = 1024,
        n_predict: int = 2048,
        **loader_options,
    ) -> None:
        super().__init__(**loader_options)
        self.seed = seed
        self.sizes = {"train": n_train, "val": n_val, "predict": n_predict}

    def make(self, rng: np.random.Generator, task: np.random.Generator, n: int) -> ArrayDataset:
        """``n`` samples drawn with ``rng`` from the task whose constants ``task`` draws."""
        raise NotImplementedError

    def split(self, name: str) -> ArrayDataset:
        # The task's constants depend on the seed only; each split has its own samples.
        task = np.random.default_rng([self.seed, 99])
        rng = np.random.default_rng([self.seed, _SPLITS[name]])
        return self.make(rng, task, self.sizes[name])

    def load_fit(self) -> tuple[ArrayDataset, ArrayDataset]:
        return self.split("train"), self.split("val")

    def load_predict(self) -> ArrayDataset:
        return self.split("predict")


class RegressionDemo(_DemoDataModule):
    """y = x @ w + b + noise, with x of ``input_dim`` standard normal features."""

    def __init__(self, input_dim: int = 10, noise: float = 0.1, **options) -> None:
        super().__init__(**options)
        self.input_dim = input_dim
        self.noise = noise

    def make(self, rng: np.random.Generator, task: np.random.Generator, n: int) -> ArrayDataset:
        w = task.normal(size=(self.input_dim, 1))
        b = task.normal()
        x = rng.normal(size=(n, self.input_dim))
        y = x @ w + b + self.noise * rng.normal(size=(n, 1))
        return ArrayDataset(x.astype(np.float32), y.astype(np.float32))


class ImageDemo(_DemoDataModule):
    """3xSxS images: a smooth per-class template plus noise; the label is the class."""

    def __init__(
        self, num_classes: int = 10, image_size: int = 32, noise: float = 1.0, **options
    ) -> None:
        options.setdefault("batch_size", 256)
        options.setdefault("n_train", 3072)
        super().__init__(**options)
        self.num_classes = num_classes
        self.image_size = image_size
        self.noise = noise

    def make(self, rng: np.random.Generator, task: np.random.Generator, n: int) -> ArrayDataset:
        coarse = task.normal(size=(self.num_classes, 3, 4, 4))
        scale = self.image_size // 4
        templates = coarse.repeat(scale, axis=2).repeat(scale, axis=3)
        labels = rng.integers(0, self.num_classes, size=n)
        shape = (n, 3, self.image_size, self.image_size)
        images = templates[labels] + self.noise * rng.normal(size=shape)
        return ArrayDataset(images.astype(np.float32), labels.astype(np.int64))


class SequenceDemo(_DemoDataModule):
    """Sequences whose target per step is a linear map of the running mean of the inputs."""

    def __init__(
        self,
        seq_len: int = 20,
        input_size: int = 5,
        output_size: int = 3,
        noise: float = 0.05,
        **options,
    ) -> None:
        options.setdefault("batch_size", 512)
        options.setdefault("train_batch_size", 32)
        super().__init__(**options)
        self.seq_len = seq_len
        self.input_size = input_size
        self.output_size = output_size
        self.noise = noise

    def make(self, rng: np.random.Generator, task: np.random.Generator, n: int) -> ArrayDataset:
        w = task.normal(size=(self.input_size, self.output_size))
        x = rng.normal(size=(n, self.seq_len, self.input_size))
        steps = np.arange(1, self.seq_len + 1).reshape(1, -1, 1)
        running_mean = x.cumsum(axis=1) / steps
        y = running_mean @ w + self.noise * rng.normal(size=(n, self.seq_len, self.output_size))
        return ArrayDataset(x.astype(np.float32), y.astype(np.float32))
