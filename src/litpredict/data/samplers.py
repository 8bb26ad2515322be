"""Samplers for prediction: shards without padding, whole in-order batches as ranges, and
the batches left to predict when a run resumes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import BatchSampler, Dataset, DistributedSampler, SequentialSampler


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


class PlannedBatchSampler:
    """Yields batches given in advance: what is left of a run that earlier attempts began.

    On purpose not a torch ``BatchSampler`` and without ``batch_size``: Lightning rebuilds
    a ``BatchSampler`` around a sampler of its own (a distributed one under DDP), but
    passes any other batch sampler through as it is, only wrapped to record the indices.
    The batches are already this rank's share (``litpredict.writing.resume``).
    """

    def __init__(self, batches: Sequence[Any]) -> None:
        self.batches = list(batches)

    def __iter__(self) -> Iterator[Sequence[int]]:
        for batch in self.batches:
            yield batch if isinstance(batch, range) else batch.tolist()

    def __len__(self) -> int:
        return len(self.batches)
