"""The predict loader of a resumed attempt: only the batches earlier attempts did not
write, the first attempt's batches, spread over this attempt's ranks (``resume``)."""

from __future__ import annotations

import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.writing.resume import DONE, read_record
from litpredict.writing.shard_layout import SHARDS

FALLBACK_BATCH = 256  # a loader whose batch size cannot be read (a custom batch sampler)


def install_loader(datamodule: Any, run_dir: Path) -> None:
    """Make ``datamodule``'s predict loader yield only what earlier attempts did not write.

    On every rank, before ``Trainer.predict``. The loader decides when Lightning asks for
    it (after the writer's set-up barrier, so rank 0 has prepared ``.shards``); a run with
    nothing to reuse gets the datamodule's loader untouched. Set as an instance attribute
    holding a ``partial``, so it pickles for ``ddp_spawn`` and Lightning sees the hook as
    overridden.
    """
    original = datamodule.predict_dataloader
    if getattr(original, "__self__", None) is datamodule:
        original = partial(original.__func__, datamodule)  # pickles by the function's name
    root = Path(run_dir) / SHARDS
    datamodule.predict_dataloader = partial(_resumed_loader, datamodule, original, root)
    # A rank may get no batch left to predict; the writer handles a rank without a shard.
    datamodule.allow_zero_length_dataloader_with_multiple_devices = True


def _resumed_loader(datamodule: Any, original: Any, root: Path) -> Any:
    from torch.utils.data import DataLoader

    from litpredict.data.samplers import PlannedBatchSampler

    loader = original()
    record = read_record(root) or {}
    if not record.get("reused") or not isinstance(loader, DataLoader):
        return loader  # nothing to reuse; or several loaders, which the writer refuses
    done = np.load(root / DONE)
    try:
        size = len(loader.dataset)
    except TypeError:
        return loader  # an iterable dataset: the writer refuses it
    if size != len(done):
        raise PredictionError(
            f"the predict dataset has {size} samples; the earlier attempts of this run "
            f"predicted from {len(done)}, with the same config and data fingerprint",
            f"predict into a new hydra.run.dir (or delete {root} to start this run over)",
        )
    batches = remaining_batches(loader, done, int(record["plan_world_size"]))
    trainer = datamodule.trainer
    mine = batches[trainer.global_rank :: trainer.world_size]
    # DataLoader refuses a new batch_sampler once built; Lightning rebuilds this loader
    # for prediction from its attributes and keeps a batch sampler that is not a torch
    # BatchSampler as it is (only wrapped to record the indices).
    object.__setattr__(loader, "batch_sampler", PlannedBatchSampler(mine))
    # ...and warns that it cannot check a custom batch sampler returns every sample, and
    # when a rank (or every rank: all was written) has no batch left.
    warnings.filterwarnings("ignore", message=".*custom batch sampler `PlannedBatchSampler`")
    warnings.filterwarnings("ignore", message="Total length of `.*` across ranks is zero")
    return loader


def remaining_batches(loader: Any, done: np.ndarray, world_size: int) -> list[Any]:
    """The batches of the run's first attempt that are not all written, in dataset order.

    With a loader in dataset order (a plain ``BatchSampler`` or litpredict's
    ``SliceBatchSampler`` over a ``SequentialSampler`` or ``ShardSampler``), rank r of the
    first attempt's ``world_size`` predicted ``range(r, N, world_size)`` in batches of the
    loader's batch size: those batches are rebuilt as ranges. Any other order (shuffled, a
    sampler of the user's) cannot be rebuilt: the missing samples, in dataset order, in
    batches of that size.
    """
    from torch.utils.data import BatchSampler, SequentialSampler

    from litpredict.data.samplers import ShardSampler, SliceBatchSampler

    batch_sampler = loader.batch_sampler
    size = getattr(batch_sampler, "batch_size", None) or loader.batch_size
    sampler = getattr(batch_sampler, "sampler", None)
    in_order = type(batch_sampler) in (BatchSampler, SliceBatchSampler) and (
        type(sampler) is SequentialSampler or isinstance(sampler, ShardSampler)
    )
    total = len(done)
    if not (in_order and size):
        size = int(size or FALLBACK_BATCH)
        left = np.flatnonzero(~done)
        return [left[i : i + size] for i in range(0, len(left), size)]
    found: list[range] = []
    for rank in range(world_size):
        order = range(rank, total, world_size)
        written = done[rank::world_size]
        padded = np.ones(-(-len(written) // size) * size, dtype=bool)
        padded[: len(written)] = written
        for batch in np.flatnonzero(~padded.reshape(-1, size).all(axis=1)):
            found.append(order[batch * size : (batch + 1) * size])
    found.sort(key=lambda batch: batch.start)
    return found
