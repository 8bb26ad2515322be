"""Complete run directories written directly, for tests about combining finished predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_run(
    run_dir: Path,
    predictions: np.ndarray | dict[str, np.ndarray],
    ids: list[str] | None = None,
    datamodule: dict[str, Any] | None = None,
    epoch: int = 0,
) -> Path:
    """A run directory as predict leaves it (writer=npy): outputs, ids.txt, a complete manifest."""
    from litpredict.rundir.hashing import sha256_file

    run_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(predictions, dict):
        (run_dir / "predictions").mkdir()
        files = []
        for key, array in predictions.items():
            np.save(run_dir / "predictions" / f"{key}.npy", array)
            files.append(f"predictions/{key}.npy")
        n = len(next(iter(predictions.values())))
    else:
        np.save(run_dir / "predictions.npy", predictions)
        files, n = ["predictions.npy"], len(predictions)
    if ids is not None:
        (run_dir / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
        files.append("ids.txt")
    manifest = {
        "status": "complete",
        "num_predictions": n,
        "outputs": [{"path": f, "sha256": sha256_file(run_dir / f)} for f in files],
        "checkpoint": {
            "path": f"/ckpts/epoch={epoch}.ckpt",
            "sha256": f"{epoch:064x}",
            "epoch": epoch,
            "global_step": 10 * epoch,
        },
        "config": {"datamodule": datamodule or {"_target_": "x.Data", "n": n, "batch_size": 8}},
        "data": [],
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def write_sweep(sweep_dir: Path, members: list[np.ndarray], **kwargs: Any) -> list[Path]:
    """Job directories ``<num>_epoch=<num>`` of a sweep, one per array."""
    return [
        write_run(sweep_dir / f"{num}_epoch={num}", array, epoch=num, **kwargs)
        for num, array in enumerate(members)
    ]
