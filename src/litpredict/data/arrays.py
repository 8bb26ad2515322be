"""Array-backed datasets that fetch whole batches, and the datamodule base around them."""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    SequentialSampler,
)

from litpredict.errors import DataError


def _as_index(indices: Sequence[int]) -> slice | np.ndarray:
    """A slice when the indices are one evenly spaced run (zero-copy on memory maps)."""
    if isinstance(indices, range) and indices.step > 0:
        return slice(indices.start, indices.stop, indices.step)
    index = np.asarray(indices, dtype=np.int64)
    first = int(index[0])
    if int(index[-1]) - first + 1 == len(index) and bool(np.all(np.diff(index) == 1)):
        return slice(first, first + len(index))
    return index


def _tensor(rows: np.ndarray, copy: bool) -> torch.Tensor:
    """A writable tensor of ``rows``; ``copy`` for views into the dataset (memory maps)."""
    if rows.dtype == np.float64:
        return torch.from_numpy(rows.astype(np.float32))
    return torch.from_numpy(np.array(rows, copy=True) if copy else np.ascontiguousarray(rows))


def _release_pages(rows: np.ndarray) -> None:
    """Unmap the pages of ``rows`` (already copied) from this process.

    A read-only memory map keeps every page it has touched in the process's resident
    memory, so reading a file once from start to end would grow RSS by the file's size.
    The pages stay in the page cache: reading them again costs a minor fault, not I/O.
    """
    handle = getattr(rows, "_mmap", None)
    if handle is None or getattr(rows, "mode", None) != "r" or not hasattr(handle, "madvise"):
        return
    if rows.size == 0 or min(rows.strides, default=0) < 0:
        return
    low = rows.ctypes.data
    span = sum((n - 1) * step for n, step in zip(rows.shape, rows.strides, strict=True))
    high = low + span + rows.itemsize
    base = np.frombuffer(handle, dtype=np.uint8).ctypes.data
    start = (low - base) // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(len(handle), -(-(high - base) // mmap.PAGESIZE) * mmap.PAGESIZE)
    if stop > start >= 0:
        with contextlib.suppress(OSError):  # only memory is at stake
            handle.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _take(array: np.ndarray, index: slice | np.ndarray) -> torch.Tensor:
    rows = array[index]
    if not isinstance(index, slice):
        return _tensor(rows, copy=False)  # fancy indexing already copied
    tensor = _tensor(rows, copy=True)
    _release_pages(rows)
    return tensor


AUTO = "auto"
AUTO_ROWS = (4 << 20, 1024, 65536)  # tabular rows: 4 MiB a batch, within 1024..65536 rows
AUTO_SAMPLES = (16 << 20, 16, 512)  # images, sequences: 16 MiB a batch, within 16..512
AUTO_BATCH = 256  # datasets that are not arrays (one sample's size unknown)


def auto_batch_size(sample_shape: Sequence[int], itemsize: int) -> int:
    """The ``auto`` prediction batch size: a power of two by the size of one sample.

    Tabular rows (1-d samples) feed cheap models, where per-batch costs (~0.2 ms of
    Lightning's loop, the writer) would dominate: as many rows as fit in 4 MiB (10
    float32 features: 65536). Images and sequences feed compute-bound models whose
    activations outgrow the caches in big batches (the LSTM ran 27k sequences/s at 512,
    15k/s at 8192 here): up to 512, fewer for samples so large that 512 exceed 16 MiB.
    """
    budget, low, high = AUTO_ROWS if len(sample_shape) == 1 else AUTO_SAMPLES
    sample_bytes = max(1, int(np.prod(sample_shape, dtype=np.int64)) * itemsize)
    count = budget // sample_bytes
    return min(high, max(low, 1 << max(0, count.bit_length() - 1)))


def collate_batch(batch: Any) -> Any:
    """Batches come ready-made from ``ArrayDataset.__getitems__``; pass them through."""
    return batch


class ShardSampler(DistributedSampler):
    """Rank r predicts samples r, r + world, r + 2 * world, ...: no padding, no repeats.

    Unlike Lightning's own predict sampler it allows a rank to get no sample, so fewer
    samples than ranks (N=1 on 2 ranks) works. Lightning keeps a ``DistributedSampler``
    it is given and still records the batch indices the writer needs.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(self.indices)

    @property
    def indices(self) -> range:
        return range(self.rank, self.total_size, self.num_replicas)


def _index_range(sampler: Any) -> range | None:
    """The sampler's indices as a ``range``, when it walks them in order or strided."""
    if type(sampler) is SequentialSampler:
        return range(len(sampler.data_source))
    if isinstance(sampler, ShardSampler):
        return sampler.indices
    return None


class SliceBatchSampler(BatchSampler):
    """Yields each batch as a ``range`` when the sampler walks the dataset in order.

    A range holds a whole batch's indices in O(1): :class:`ArrayDataset` reads it as one
    slice, and Lightning passes it on as the writer's ``batch_indices``, so no step of
    the input or output path loops over samples in Python. Other samplers (shuffled,
    distributed) get torch's lists of indices.
    """

    def __iter__(self) -> Iterator[Sequence[int]]:
        indices = _index_range(self.sampler)
        if indices is None:
            yield from super().__iter__()
            return
        stop = len(indices) - (len(indices) % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            yield indices[start : start + self.batch_size]


class ArrayDataset(Dataset):
    """Rows of ``features`` (and ``targets``) as samples; ``(x, y)`` with targets, else ``x``.

    ``__getitems__`` lets torch's DataLoader fetch a whole batch with one slice instead
    of one ``__getitem__`` and a collate per sample, which dominates tabular prediction.
    """

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray | None = None,
        sample_ids: Sequence[str] | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(features):
            raise DataError(
                f"the targets have {len(targets)} rows but the features have {len(features)}",
                "give a target file with one row per sample",
            )
        if sample_ids is not None and len(sample_ids) != len(features):
            raise DataError(
                f"{len(sample_ids)} sample ids for {len(features)} samples",
                "give one id per sample",
            )
        self.features = features
        self.targets = targets
        self.sample_ids = sample_ids

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> Any:
        index = _as_index(indices)
        x = _take(self.features, index)
        if self.targets is None:
            return x
        return x, _take(self.targets, index)


class ArrayDataModule(pl.LightningDataModule):
    """Datamodule base: subclasses say where the arrays come from.

    ``batch_size`` is the prediction batch size (prediction likes large batches);
    ``"auto"`` sizes batches by the bytes of one sample (:func:`auto_batch_size`).
    ``train_batch_size`` is used for fitting. ``pin_memory=None`` pins batches only when
    the trainer runs on a CUDA device, the one case where pinning pays.
    """

    def __init__(
        self,
        batch_size: int | str = 1024,
        train_batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool = False,
        multiprocessing_context: str | None = None,
    ) -> None:
        super().__init__()
        # Our ShardSampler may leave a rank without samples (N < world size); prediction
        # has no collective per batch, so that rank simply writes an empty shard.
        self.allow_zero_length_dataloader_with_multiple_devices = True
        self.batch_size = batch_size
        self.train_batch_size = train_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.multiprocessing_context = multiprocessing_context
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.predict_set: Dataset | None = None

    def load_fit(self) -> tuple[Dataset, Dataset]:
        raise NotImplementedError

    def load_predict(self) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate") and self.train_set is None:
            self.train_set, self.val_set = self.load_fit()
        if stage == "predict" and self.predict_set is None:
            self.predict_set = self.load_predict()
            if len(self.predict_set) == 0:
                raise DataError(
                    "the predict dataset is empty (0 samples)",
                    "point the datamodule at data with at least one sample",
                )

    def prediction_batch_size(self, dataset: Dataset) -> int:
        """``batch_size``, with ``auto`` resolved from the size of one sample."""
        size = self.batch_size
        if size == AUTO:
            features = getattr(dataset, "features", None)
            if features is None:
                return AUTO_BATCH
            return auto_batch_size(features.shape[1:], features.dtype.itemsize)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DataError(
                f"datamodule.batch_size={size!r} is not a positive number of samples",
                "set datamodule.batch_size to an integer such as 1024, or to auto",
            )
        return size

    def _pin(self) -> bool:
        if self.pin_memory is not None:
            return bool(self.pin_memory)
        from pytorch_lightning.accelerators import CUDAAccelerator

        trainer = self.trainer
        return trainer is not None and isinstance(trainer.accelerator, CUDAAccelerator)

    def _loader(
        self, dataset: Dataset, batch_size: int, shuffle: bool = False, sampler=None
    ) -> DataLoader:
        workers = self.num_workers > 0
        options = {
            "num_workers": self.num_workers,
            "pin_memory": self._pin(),
            "persistent_workers": self.persistent_workers and workers,
            "multiprocessing_context": self.multiprocessing_context if workers else None,
        }
        if not isinstance(dataset, ArrayDataset) or shuffle or sampler is not None:
            collate = collate_batch if isinstance(dataset, ArrayDataset) else None
            return DataLoader(
                dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                collate_fn=collate, **options,
            )  # fmt: skip
        # In order on one process: whole batches as ranges (see SliceBatchSampler).
        batches = SliceBatchSampler(SequentialSampler(dataset), batch_size, drop_last=False)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=collate_batch, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.train_batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.prediction_batch_size(self.val_set))

    def predict_dataloader(self) -> DataLoader:
        trainer = self.trainer
        sampler = None
        if trainer is not None and trainer.world_size > 1:
            sampler = ShardSampler(self.predict_set, trainer.world_size, trainer.global_rank)
        size = self.prediction_batch_size(self.predict_set)
        return self._loader(self.predict_set, size, sampler=sampler)
