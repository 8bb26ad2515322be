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
from litpredict.writing.shards import SHARDS, DatasetMeta, read_shards

STAGING = ".staging"


def finalize(output_dir: Path, format: str, metrics: list[str] | None = None) -> dict[str, Any]:
    """Merge ``output_dir``'s shards into ``format`` files; ``{"outputs", "metrics", ...}``.

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
        "resume": resumed,
    }
