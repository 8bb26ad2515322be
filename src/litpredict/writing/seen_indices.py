"""The one place litpredict reaches into Lightning's private state.

Lightning's ``_IndexBatchSamplerWrapper`` appends every batch's dataset indices to
``seen_batch_indices`` for the whole run (about 40 MB per million rows at batch 1024),
even with ``return_predictions=False`` and a batch-interval writer. The writer drops
each entry once the batch is on disk. ``tests/test_writer.py`` runs a real
``Trainer.predict`` to catch a Lightning release that moves this list.
"""

from __future__ import annotations

from typing import Any


def drop_seen_batch_indices(trainer: Any, batch_idx: int, dataloader_idx: int) -> bool:
    """Forget Lightning's record of one written batch; False if the record was not found."""
    try:
        loader = trainer.predict_loop._combined_loader.flattened[dataloader_idx]
        seen = loader.batch_sampler.seen_batch_indices
    except (AttributeError, IndexError, TypeError):
        return False
    if not isinstance(seen, list) or not 0 <= batch_idx < len(seen):
        return False
    seen[batch_idx] = None
    return True
