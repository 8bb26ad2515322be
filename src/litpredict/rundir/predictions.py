"""A finished run directory read back: its manifest, prediction arrays and sample ids.

What ensembles, comparisons and the sweep summary's agreement column read. Only complete
runs whose outputs still have their manifest's hashes are read, and only the ``npy``
writer's files (``predictions.npy``, or ``predictions/<key>.npy`` for a dict output):
arrays come back memory-mapped, so reading a run costs nothing until it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import UserError
from litpredict.rundir.manifest import COMPLETE, read_manifest

TENSOR_KEY = "prediction"  # the one key of a single-tensor output (writing.outputs' name)


class RunOutputsError(UserError):
    """A run directory that cannot be combined or compared: not complete, or not npy."""


@dataclass
class RunOutputs:
    run_dir: Path
    manifest: dict[str, Any]
    kind: str  # "tensor" (predictions.npy) or "dict" (predictions/<key>.npy)
    arrays: dict[str, np.ndarray]
    ids: list[str] | None

    @property
    def num_predictions(self) -> int:
        return len(next(iter(self.arrays.values())))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{key: (shape, dtype)}``: what members of one ensemble must share."""
        return {key: (tuple(a.shape), str(a.dtype)) for key, a in self.arrays.items()}


def read_run(run_dir: str | Path, verify: bool = True) -> RunOutputs:
    """The outputs of the complete run in ``run_dir``; ``verify`` re-checks their hashes."""
    from litpredict.rundir.hashing import sha256_file

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != COMPLETE:
        raise RunOutputsError(
            f"{run_dir} holds no complete run (status: {(manifest or {}).get('status')})",
            "pass run directories whose manifest.json says status: complete",
        )
    recorded = {o.get("path"): o.get("sha256") for o in manifest.get("outputs") or []}
    paths = sorted(p for p in recorded if p and p.endswith(".npy"))
    if not paths:
        raise RunOutputsError(
            f"{run_dir} holds no .npy predictions (outputs: {', '.join(map(str, recorded))})",
            "predict with writer=npy (the default) to ensemble or compare runs",
        )
    for path in [*paths, *(["ids.txt"] if "ids.txt" in recorded else [])]:
        if verify and sha256_file(run_dir / path) != recorded[path]:
            raise RunOutputsError(
                f"{run_dir / path} no longer has the sha256 its manifest records",
                "predict that run again (its outputs were changed or truncated)",
            )
    kind = "tensor" if paths == ["predictions.npy"] else "dict"
    arrays = {
        TENSOR_KEY if kind == "tensor" else Path(p).stem: np.load(run_dir / p, mmap_mode="r")
        for p in paths
    }
    ids = None
    if "ids.txt" in recorded:
        ids = (run_dir / "ids.txt").read_text(encoding="utf-8").splitlines()
    return RunOutputs(run_dir, manifest, kind, arrays, ids)


def member_record(run: RunOutputs) -> dict[str, Any]:
    """What an ensemble's manifest says of one member: where, which checkpoint, which outputs."""
    checkpoint = run.manifest.get("checkpoint") or {}
    return {
        "job_dir": str(run.run_dir.resolve()),
        "checkpoint": {k: checkpoint.get(k) for k in ("path", "sha256", "epoch", "global_step")},
        "outputs": [
            {"path": o["path"], "sha256": o["sha256"]} for o in run.manifest.get("outputs", [])
        ],
    }
