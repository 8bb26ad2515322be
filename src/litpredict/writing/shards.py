"""Per-rank shard files: raw rows appended batch by batch, read back as memory maps.

A shard is a folder with ``index.bin`` (int64 dataset indices) and one ``<key>.bin``
per output, rows in the order they were predicted. ``meta.json`` is written when the
shard is closed, so a shard without it is incomplete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from litpredict.errors import PredictionError

META = "meta.json"
INDEX = "index"


class ShardWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.rows = 0
        self.layout: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.files: dict[str, BinaryIO] = {}

    def append(self, indices: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        layout = {key: (a.dtype.str, a.shape[1:]) for key, a in arrays.items()}
        if not self.layout:
            self.layout = layout
            # Kept open across batches and closed in close().
            self.files = {k: open(self.directory / f"{k}.bin", "wb") for k in [INDEX, *layout]}  # noqa: SIM115
        elif layout != self.layout:
            raise PredictionError(
                f"batch predictions changed layout: first {self.layout}, now {layout}",
                "return outputs of the same keys, dtype and per-sample shape from every "
                "predict_step (pad variable-length outputs)",
            )
        for key, array in arrays.items():
            if len(array) != len(indices):
                raise PredictionError(
                    f"output {key!r} has {len(array)} rows for a batch of {len(indices)} samples",
                    "return one row per sample from predict_step",
                )
            self.files[key].write(np.ascontiguousarray(array).tobytes())
        self.files[INDEX].write(indices.astype(np.int64, copy=False).tobytes())
        self.rows += len(indices)

    def close(self, kind: str | None) -> None:
        for file in self.files.values():
            file.close()
        layout = {k: [d, list(s)] for k, (d, s) in self.layout.items()}
        meta = {"rows": self.rows, "kind": kind, "layout": layout}
        (self.directory / META).write_text(json.dumps(meta))


class Shard:
    """A closed shard, read lazily."""

    def __init__(self, directory: Path) -> None:
        meta_path = directory / META
        if not meta_path.is_file():
            raise PredictionError(
                f"the prediction shard {str(directory)!r} was never closed (a rank did not finish)",
                "re-run the prediction",
            )
        meta = json.loads(meta_path.read_text())
        self.directory = directory
        self.rows: int = meta["rows"]
        self.kind: str | None = meta["kind"]
        self.layout = {k: (np.dtype(d), tuple(s)) for k, (d, s) in meta["layout"].items()}

    def array(self, key: str) -> np.ndarray:
        dtype, shape = (np.dtype(np.int64), ()) if key == INDEX else self.layout[key]
        if self.rows == 0:
            return np.empty((0, *shape), dtype)
        return np.memmap(self.directory / f"{key}.bin", dtype, "r", shape=(self.rows, *shape))


def read_shards(root: Path) -> list[Shard]:
    return [Shard(d) for d in sorted(root.glob("rank*")) if d.is_dir()]
