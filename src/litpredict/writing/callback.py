"""The prediction writer: one lifecycle of prepare (rank 0), append (each rank), finalize.

Lightning keeps every prediction in memory unless ``return_predictions=False`` and the
writer works per batch; even then it records every batch's indices. This writer keeps
neither: memory stays flat however many samples there are. Each rank commits what it
wrote every few seconds, so a run stopped part way resumes from it (``resume``).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from litpredict.data.base import predict_dataset_length, run_record_of, sample_ids_of
from litpredict.process.errors import PredictionError
from litpredict.process.reporting import EXIT_INTERRUPTED
from litpredict.process.signals import sigterm_flagged
from litpredict.trainer import lightning_api
from litpredict.writing.disk import write_errors
from litpredict.writing.finalize import finalize
from litpredict.writing.formats import FORMATS, TABLE_FORMATS, table_columns
from litpredict.writing.ids import checked_ids
from litpredict.writing.metrics import check_named_metrics
from litpredict.writing.outputs import TARGET, batch_arrays, index_array
from litpredict.writing.resume import RECORD, RunRecord, commit_settings, read_record
from litpredict.writing.seen_indices import drop_seen_batch_indices
from litpredict.writing.shard_layout import SHARDS, DatasetMeta, rank_dir
from litpredict.writing.shard_writer import ShardWriter
from litpredict.writing.stages import StageClock

log = logging.getLogger(__name__)


class PredictionWriterMixin:
    """Writes predictions in dataset order to ``output_dir`` in one of :data:`FORMATS`.

    - prepare: ``litpredict.predict`` has rank 0 keep what earlier attempts of the run
      committed, or clear it, before predicting (``resume.prepare``; then ``prepared``
      is set); a writer used on its own has global rank 0 clear ``<output_dir>/.shards``
      in :meth:`setup`. Every rank waits for rank 0 there before predicting.
    - append, per batch: rank r appends the batch and its dataset indices to
      ``.shards/attempt<k>/rank<r>`` and commits it every ``commit_every_s`` seconds
      and/or ``commit_every_batches`` batches (see ``shard_layout``), also when the run stops
      on an exception or a signal; the shard is closed when the rank's predict epoch ends.
    - :meth:`finalize`, on global rank 0 once every rank has finished: merges the
      shards of every attempt into dataset order from what is on disk, drops duplicate
      indices, checks that every sample has a prediction, and moves whole files into place.

    Each rank also times its loop (:class:`~litpredict.writing.stages.StageClock`) and
    leaves the times in its shard, for the manifest's ``stages``.
    """

    def __init__(
        self,
        format: str = "npy",
        output_dir: str | None = None,
        metrics: list[str] | None = None,
        commit_every_s: float | None = 5.0,
        commit_every_batches: int | None = None,
    ) -> None:
        super().__init__(write_interval="batch")
        if format not in FORMATS:
            raise PredictionError(
                f"unknown writer format {format!r}", f"use one of {sorted(FORMATS)}"
            )
        self.format = format
        self.metrics = metrics  # names of litpredict.writing.metrics; None: the defaults
        self.output_dir = Path(output_dir) if output_dir else None
        self.commit_every_s, self.commit_every_batches = commit_settings(
            commit_every_s, commit_every_batches
        )
        self.prepared = False  # rank 0 of litpredict.predict has prepared .shards
        self.attempt = 1
        self.kind: str | None = None
        self._shard: ShardWriter | None = None
        self._clock = StageClock()

    @property
    def shard_root(self) -> Path:
        if self.output_dir is None:
            raise PredictionError(
                "the prediction writer has no output_dir", "set writer.output_dir"
            )
        return self.output_dir / SHARDS

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Runs on every rank, also on ranks that get no samples: the barrier is safe here.
        if trainer.is_global_zero and not self.prepared:
            shutil.rmtree(self.shard_root, ignore_errors=True)
            with write_errors("the shard folder", self.shard_root.parent):
                self.shard_root.mkdir(parents=True)
                RunRecord(self.shard_root).start(attempts=1, reused=0)
        trainer.strategy.barrier("litpredict-shards-cleared")
        self._clock = StageClock()
        self._clock.start()

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
        num_samples = predict_dataset_length(dataset)
        # Read here, not in setup: every set-up hook has run (a rank that does not see
        # rank 0's run directory has been stopped, naming the problem).
        record = read_record(self.shard_root)
        if record is None:
            raise PredictionError(
                f"{self.shard_root / RECORD} is missing: rank 0 did not prepare the run",
                "check that every rank sees the same run directory, and run again",
            )
        self.attempt = int(record.get("attempts") or 1)
        if trainer.is_global_zero:
            ids = sample_ids_of(dataset)
            if ids is not None:
                ids = checked_ids(ids, num_samples)
            with write_errors("the sample ids", self.shard_root):
                DatasetMeta(num_samples, ids, run_record_of(dataset)).write(self.shard_root)
        with write_errors("a prediction shard", self.shard_root):
            self._shard = ShardWriter(
                rank_dir(self.shard_root, self.attempt, trainer.global_rank),
                header_rows=num_samples,
                commit_every_s=self.commit_every_s,
                commit_every_batches=self.commit_every_batches,
            )

    def on_predict_batch_start(self, trainer: Any, pl_module: Any, *args: Any, **kw: Any) -> None:
        self._clock.batch_started()

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
        started = self._clock.step_ended()
        if not batch_indices:
            raise PredictionError(
                "Lightning could not tell which samples this batch holds",
                "predict from a torch DataLoader over a map-style dataset",
            )
        self.kind, arrays = batch_arrays(prediction, batch, len(batch_indices))
        if self._shard.rows == 0:  # refuse before predicting on
            outputs = {k: a for k, a in arrays.items() if k != TARGET}
            if self.format in TABLE_FORMATS:
                table_columns({k: a.shape[1:] for k, a in outputs.items()})
            check_named_metrics(self.metrics, self.kind, outputs, arrays.get(TARGET))
        self._shard.kind = self.kind
        with write_errors("a prediction shard", self.shard_root):
            self._shard.append(index_array(batch_indices), arrays)
        if sigterm_flagged() or getattr(trainer, "received_sigterm", False):
            # A ddp_spawn worker (the main process stops it, or the scheduler stops all):
            # its SIGTERM only sets a flag (process/spawned_ranks.py; Lightning's handler
            # sets its own). Commit, then end the worker quietly with the interrupted exit
            # code; the main process reports it.
            self._commit()
            raise SystemExit(EXIT_INTERRUPTED)
        if not drop_seen_batch_indices(trainer, batch_idx, dataloader_idx):
            warnings.warn(
                "litpredict could not drop Lightning's record of written batch indices "
                "(seen_batch_indices); memory grows about 40 MB per million samples",
                stacklevel=1,
            )
        self._clock.written(started)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A rank without samples skips the predict loop and never gets here: its missing
        # shard is simply empty. So no collective calls in these hooks.
        with write_errors("a prediction shard", self.shard_root):
            self._shard.close(self.kind, self._clock.totals())
        self._shard = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """The run stops (a signal, a failed rank): commit the whole batches written so far."""
        self._commit()

    def _commit(self) -> None:
        if self._shard is None:
            return
        try:
            self._shard.commit()
        except Exception as error:  # the run is ending on another error: keep that one
            log.warning("could not commit the rows written last: %s", error)

    def finalize(self) -> dict[str, Any]:
        """Merge the shards on disk into final files: ``{"outputs", "metrics", ...}``.

        Call on global rank 0 after every rank has finished predicting: under
        ``ddp_spawn`` in the main process once ``Trainer.predict`` returns; under
        torchrun or srun after a barrier on every rank.
        """
        if self.output_dir is None:
            raise PredictionError(
                "the prediction writer has no output_dir", "set writer.output_dir"
            )
        return finalize(self.output_dir, self.format, self.metrics)


class PredictionWriter(PredictionWriterMixin, BasePredictionWriter):
    __doc__ = PredictionWriterMixin.__doc__
    # Written as a mixin so the lightning package gets the same writer: with a lightning
    # model, ``LightningAPI.target`` builds ``LightningPredictionWriter`` instead.


# LightningPredictionWriter: the same on lightning.pytorch's BasePredictionWriter.
__getattr__ = lightning_api.twins(__name__)
