"""The inputs every approach shares: a random ``.npy`` and a checkpoint of the real trainer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bench.measure import MB, file_done, measure


def make_input(path: Path, rows: int, shape: tuple[int, ...], seed: int = 0) -> Path:
    """A float32 .npy of ``rows`` random samples, written in chunks (the bench stays small)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    partial = path.with_suffix(".partial.npy")
    array = np.lib.format.open_memmap(partial, "w+", np.float32, (rows, *shape))
    step = max(1, (32 * MB) // (4 * int(np.prod(shape))))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        array[start:stop] = rng.standard_normal((stop - start, *shape), dtype=np.float32)
    array.flush()
    del array
    partial.rename(path)
    return path


def make_checkpoint(
    workdir: Path, experiment: str, quick: bool, overrides: tuple[str, ...] = ()
) -> Path:
    """A short training run of ``experiment`` (and ``overrides``) with the real train
    command; its last.ckpt."""
    tag = "".join(f"-{o.replace('=', '')}" for o in overrides)
    run_dir = workdir / f"train-{experiment}{tag}"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if checkpoint.is_file():
        return checkpoint
    command = [
        sys.executable, "-m", "litpredict.train", f"experiment={experiment}",
        "trainer.max_epochs=1", f"+trainer.limit_train_batches={2 if quick else 8}",
        "+trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}", *overrides,
    ]  # fmt: skip
    measure(command, workdir / f"train-{experiment}{tag}.log", workdir, file_done(checkpoint))
    return checkpoint
