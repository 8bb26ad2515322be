"""The datamodule base, and what litpredict reads from any user's datamodule.

A datamodule of your own needs no base class from litpredict. Three optional attributes
make its runs better described; litpredict reads them only through the helpers here:

- ``datamodule.input_files`` (:class:`DescribesInputFiles`): the manifest's data
  fingerprint hashes these files, so a run records which data it predicted on.
- ``predict_dataset.sample_ids`` (:class:`HasSampleIds`): the writer saves them as
  ``ids.txt`` (and an id column in tables), so each prediction row names its sample.
- ``predict_dataset.run_record`` (:class:`HasRunRecord`): fields the manifest gets about
  how the data were read while predicting (an image folder's ``decode_check``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from litpredict.data.arrays import AUTO, AUTO_BATCH, ArrayDataset, auto_batch_size, collate_batch
from litpredict.data.samplers import ShardSampler, SliceBatchSampler
from litpredict.process.errors import DataError

INPUT_FILES = "input_files"
SAMPLE_IDS = "sample_ids"


@runtime_checkable
class DescribesInputFiles(Protocol):
    """A datamodule that names the files (or folders) its predictions depend on.

    ``input_files`` may be a property. litpredict reads it once, on rank 0, after
    building the datamodule, and hashes each path in the background: a file by its
    content, a folder by the names and contents of the files under it, a missing path
    is recorded as missing. Without it the manifest's data fingerprint is empty.
    """

    @property
    def input_files(self) -> Sequence[str | os.PathLike[str]]: ...


@runtime_checkable
class HasSampleIds(Protocol):
    """A predict dataset with one id per sample, in dataset order (index i -> id i).

    ``None`` means no ids: outputs are then in dataset order, with no id file or column.
    """

    sample_ids: Sequence[str] | None


@runtime_checkable
class HasRunRecord(Protocol):
    """A predict dataset that says how its data were read, once predicting has begun.

    ``run_record`` is a dict of JSON values, or ``None``; global rank 0 reads it when
    predicting starts and each key becomes a field of the manifest (keys the manifest
    already has are left out). A torch ``Subset`` of such a dataset passes it on.
    """

    run_record: Mapping[str, Any] | None


def input_files_of(datamodule: Any) -> Sequence[str | os.PathLike[str]]:
    """The datamodule's ``input_files``; none when it does not declare them."""
    return datamodule.input_files if isinstance(datamodule, DescribesInputFiles) else []


def sample_ids_of(dataset: Any) -> Sequence[str] | None:
    """The dataset's ``sample_ids``; ``None`` when it has none."""
    return dataset.sample_ids if isinstance(dataset, HasSampleIds) else None


def run_record_of(dataset: Any) -> dict[str, Any]:
    """The dataset's ``run_record`` (through any ``Subset`` of it); empty when it has none."""
    from torch.utils.data import Subset

    while isinstance(dataset, Subset) and not isinstance(dataset, HasRunRecord):
        dataset = dataset.dataset
    record = dataset.run_record if isinstance(dataset, HasRunRecord) else None
    return dict(record or {})


def predict_dataset_length(dataset: Any) -> int:
    """The number of samples of a map-style predict dataset; an iterable one is refused.

    The writer lays out every output for the whole dataset before the first batch, and
    merges the ranks' rows by dataset index: it needs the length up front and an index
    per sample, which an ``IterableDataset`` has neither of.
    """
    from torch.utils.data import IterableDataset

    iterable = isinstance(dataset, IterableDataset)
    try:
        length = None if iterable else len(dataset)
    except TypeError:
        length = None
    if length is None:
        kind = "an IterableDataset" if iterable else "a dataset without a length"
        raise DataError(
            f"the predict dataset is {kind} ({type(dataset).__qualname__}): litpredict "
            "writes predictions in dataset order, so it needs the number of samples and "
            "an index per sample before predicting",
            "wrap it in a map-style torch Dataset (__len__ and __getitem__), e.g. "
            "list(your_iterable) in a Dataset, or an index over the files it reads",
        )
    return length


class ArrayDataModule(pl.LightningDataModule):
    """Datamodule base: subclasses say where the data come from (``load_fit``, ``load_predict``).

    ``batch_size`` is the prediction batch size (prediction likes large batches);
    ``"auto"`` sizes batches by the bytes of one sample (:func:`auto_batch_size`).
    ``train_batch_size`` is used for fitting. ``pin_memory=None`` pins batches only when
    the trainer runs on a CUDA device, the one case where pinning pays.

    It derives from ``pytorch_lightning``; with a ``lightning`` model, litpredict hands the
    Trainer a ``lightning`` datamodule that forwards to it (``LightningAPI.datamodule``), so
    nothing here names a package beyond the base class.
    """

    def __init__(
        self,
        batch_size: int | str = 1024,
        train_batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool = False,
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
        from litpredict.trainer.lightning_api import api_of

        trainer = self.trainer  # of either Lightning package (see ArrayDataModule)
        if trainer is None:
            return False
        cuda = api_of(trainer).module.accelerators.CUDAAccelerator
        return isinstance(trainer.accelerator, cuda)

    def _loader(
        self, dataset: Dataset, batch_size: int, shuffle: bool = False, sampler=None
    ) -> DataLoader:
        options = {
            "num_workers": self.num_workers,
            "pin_memory": self._pin(),
            "persistent_workers": self.persistent_workers and self.num_workers > 0,
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
