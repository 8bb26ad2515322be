"""The prediction writer: streams each rank's batches to shards, merges them on rank 0.

Lightning keeps every prediction in memory unless ``return_predictions=False`` and the
writer works per batch; even then it records every batch's indices. This writer keeps
neither: memory stays flat however many samples there are.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from litpredict.data.base import sample_ids_of
from litpredict.errors import PredictionError
from litpredict.hashing import sha256_file
from litpredict.writing.formats import FORMATS, publish
from litpredict.writing.merge import merge_shards, streamed_hashes
from litpredict.writing.shards import ShardWriter, read_shards

TARGET = "__target__"
DATASET_META = "dataset.json"
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def split_outputs(prediction: Any) -> tuple[str, dict[str, torch.Tensor]]:
    """A predict_step output as (kind, {key: tensor}): a tensor, a tuple or a dict of tensors."""
    if isinstance(prediction, torch.Tensor):
        return "tensor", {"prediction": prediction}
    if isinstance(prediction, (tuple, list)) and all(
        isinstance(t, torch.Tensor) for t in prediction
    ):
        return "tuple", {str(i): t for i, t in enumerate(prediction)}
    if isinstance(prediction, dict) and all(
        isinstance(t, torch.Tensor) for t in prediction.values()
    ):
        bad = [
            k for k in prediction if not isinstance(k, str) or not _KEY.fullmatch(k) or k == TARGET
        ]
        if bad:
            raise PredictionError(
                f"prediction keys {bad} cannot name files",
                "use keys of letters, digits, '_', '.' and '-'",
            )
        return "dict", dict(prediction)
    raise PredictionError(
        f"predict_step returned {type(prediction).__name__}, not tensors",
        "return a tensor, a tuple of tensors or a dict of tensors with one row per sample",
    )


def _labels(batch: Any, size: int) -> torch.Tensor | None:
    """``y`` of an ``(x, y)`` batch with one label row per sample, else None."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        target = batch[1]
        if isinstance(target, torch.Tensor) and target.ndim >= 1 and len(target) == size:
            return target
    return None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()


def _index_array(batch_indices: Any) -> range | np.ndarray:
    """A batch's dataset indices: a ``range`` as it is (O(1)), anything else as int64."""
    if isinstance(batch_indices, range):
        return batch_indices
    return np.asarray(batch_indices, dtype=np.int64)


class PredictionWriter(BasePredictionWriter):
    """Writes predictions in dataset order to ``output_dir`` in one of :data:`FORMATS`.

    While predicting, rank r appends its batches and their dataset indices to
    ``<output_dir>/.shards/rank<r>``. :meth:`finalize`, on global rank 0 after every
    rank has finished, merges them into dataset order, drops duplicate indices, checks
    that every sample has a prediction, and moves whole files into place. Call
    :meth:`clear` on rank 0 before predicting.
    """

    def __init__(self, format: str = "npy", output_dir: str | None = None) -> None:
        super().__init__(write_interval="batch")
        if format not in FORMATS:
            raise PredictionError(
                f"unknown writer format {format!r}", f"use one of {sorted(FORMATS)}"
            )
        self.format = format
        self.output_dir = Path(output_dir) if output_dir else None
        self.kind: str | None = None
        self._shard: ShardWriter | None = None

    @property
    def shard_root(self) -> Path:
        if self.output_dir is None:
            raise PredictionError(
                "the prediction writer has no output_dir", "set writer.output_dir"
            )
        return self.output_dir / ".shards"

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loaders = trainer.predict_dataloaders
        if isinstance(loaders, (list, tuple)):
            if len(loaders) != 1:
                raise PredictionError(
                    f"{len(loaders)} predict dataloaders",
                    "give the datamodule one predict_dataloader",
                )
            loaders = loaders[0]
        dataset = loaders.dataset
        if trainer.is_global_zero:
            ids = sample_ids_of(dataset)
            meta = {"num_samples": len(dataset), "has_ids": ids is not None}
            if ids is not None:
                (self.shard_root / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
            (self.shard_root / DATASET_META).write_text(json.dumps(meta))
        self._shard = ShardWriter(
            self.shard_root / f"rank{trainer.global_rank:05d}", header_rows=len(dataset)
        )

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        if not batch_indices:
            raise PredictionError(
                "Lightning could not tell which samples this batch holds",
                "predict from a torch DataLoader over a map-style dataset",
            )
        kind, outputs = split_outputs(prediction)
        self.kind = kind
        arrays = {key: _numpy(t) for key, t in outputs.items()}
        labels = _labels(batch, len(batch_indices))
        if labels is not None:
            arrays[TARGET] = _numpy(labels)
        self._shard.append(_index_array(batch_indices), arrays)
        self._forget_batch_indices(trainer, batch_idx, dataloader_idx)

    @staticmethod
    def _forget_batch_indices(trainer: pl.Trainer, batch_idx: int, dataloader_idx: int) -> None:
        """Drop Lightning's record of this batch's indices (it grows ~40 MB per million rows)."""
        loader = trainer.predict_loop._combined_loader.flattened[dataloader_idx]
        seen = getattr(getattr(loader, "batch_sampler", None), "seen_batch_indices", None)
        if seen is not None and batch_idx < len(seen):
            seen[batch_idx] = None

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A rank without samples skips the predict loop and never gets here: its missing
        # shard is simply empty. So no collective calls in these hooks.
        self._shard.close(self.kind)

    def clear(self) -> None:
        """Remove shards a previous, unfinished run left. Call on rank 0 before predicting."""
        shutil.rmtree(self.shard_root, ignore_errors=True)
        self.shard_root.mkdir(parents=True)

    def finalize(self) -> dict[str, Any]:
        """Merge the shards into final files; return ``{"outputs": [...], "metrics": {...}}``."""
        root = self.shard_root
        meta = json.loads((root / DATASET_META).read_text())
        shards = read_shards(root)
        kind = next(s.kind for s in shards if s.rows) if any(s.rows for s in shards) else "tensor"
        staging = self.output_dir / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        merged = merge_shards(shards, meta["num_samples"], staging)
        known = streamed_hashes(shards, meta["num_samples"], staging)
        targets = merged.pop(TARGET, None)
        ids = None
        if meta["has_ids"]:
            ids = (root / "ids.txt").read_text().splitlines()
        from litpredict.metrics import label_metrics

        metrics = label_metrics(merged, kind, targets)
        staged = FORMATS[self.format](merged, kind, ids, staging)
        del merged, targets
        outputs = []
        for (source, _), path in zip(staged, publish(staged, self.output_dir), strict=True):
            outputs.append(
                {
                    "path": str(path.relative_to(self.output_dir)),
                    "sha256": known.get(source) or sha256_file(path),
                    "bytes": path.stat().st_size,
                }
            )
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        return {"outputs": outputs, "metrics": metrics, "num_predictions": meta["num_samples"]}
