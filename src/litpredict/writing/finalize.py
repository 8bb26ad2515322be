"""The end of the write path: shards on disk -> final files in dataset order, hashed.

It reads only what the ranks left on disk (the shards, their ``meta.json`` and the
dataset's ``dataset.json``), never a writer's memory: under ``ddp_spawn`` it runs in
the main process, whose callback object never saw a batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from litpredict.rundir.hashing import sha256_file
from litpredict.writing.disk import write_errors
from litpredict.writing.formats import FORMATS, publish
from litpredict.writing.merge import merge_shards
from litpredict.writing.metrics import label_metrics
from litpredict.writing.outputs import TARGET
from litpredict.writing.resume import resume_summary
from litpredict.writing.shard_layout import SHARDS, DatasetMeta, Shard, attempt_of, read_shards

STAGING = ".staging"


def finalize(output_dir: Path, format: str, metrics: list[str] | None = None) -> dict[str, Any]:
    """Merge ``output_dir``'s shards into ``format`` files; ``{"outputs", "metrics", ...}``.

    Also what the ranks left beside their rows: ``stages`` (rank 0's, and every rank's
    as ``stages_per_rank`` when there were several) and the dataset's ``run_record``.

    Call on global rank 0 once every rank has closed its shard; the shards of earlier
    attempts of the run were sealed when this one began (``resume``). Files are staged and
    hashed, then renamed into place with interrupts held back, so either all of them
    have their final names or none; the shards and the staging folder are removed after.
    """
    root = output_dir / SHARDS
    dataset = DatasetMeta.read(root)
    staging = output_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    shards = read_shards(root)
    resumed = resume_summary(root, shards)
    stages = stage_fields(shards)
    with write_errors("the predictions", output_dir):
        merged = merge_shards(shards, dataset.num_samples, staging)
        targets = merged.arrays.pop(TARGET, None)
        metrics = label_metrics(merged.arrays, merged.kind, targets, metrics)
        staged = FORMATS[format](merged.arrays, merged.kind, dataset.ids, staging)
    known = merged.sha256
    del merged, targets, shards  # unmap the staged arrays before their files are hashed and moved
    # Hashed under their staging names: once a file has its final name, nothing is left
    # to do but write the manifest.
    outputs = [
        {
            "path": relative,
            "sha256": known.get(source) or sha256_file(source),
            "bytes": source.stat().st_size,
        }
        for source, relative in staged
    ]
    publish(staged, output_dir)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    return {
        "outputs": outputs,
        "metrics": metrics,
        "num_predictions": dataset.num_samples,
        **stages,
        "run_record": dataset.record,
        "resume": resumed,
    }


def stage_fields(shards: list[Shard]) -> dict[str, Any]:
    """``stages``: global rank 0's seconds waiting for data, in the model, writing; with
    several ranks, ``stages_per_rank`` too (a rank that got no samples has no shard). A
    resumed run's are this attempt's: earlier attempts' shards were cut short."""
    last = max((attempt_of(s.directory) or 0 for s in shards), default=0)
    this = [s for s in shards if (attempt_of(s.directory) or 0) == last]
    timed = [(int(s.directory.name.removeprefix("rank")), s.stages) for s in this if s.stages]
    if not timed:
        return {"stages": None}
    fields: dict[str, Any] = {"stages": min(timed, key=lambda item: item[0])[1]}
    if len(this) > 1:
        fields["stages_per_rank"] = [{"rank": rank, **stages} for rank, stages in sorted(timed)]
    return fields
