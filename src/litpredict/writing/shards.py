"""Per-rank shard files: raw rows appended batch by batch, read back as memory maps.

A shard is a folder with ``index.bin`` (int64 dataset indices) and one ``<key>.bin``
per output, rows in the order they were predicted. ``meta.json`` is written when the
shard is closed, so a shard without it is incomplete.

A shard whose rows are samples 0, 1, 2, ... in order (one process predicting in
dataset order) is ``sequential`` and has no ``index.bin``: row i is sample i.
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
        self.sequential = True  # rows so far are samples 0..rows-1; no index.bin yet
        self.layout: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.files: dict[str, BinaryIO] = {}

    def append(self, indices: range | np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Append one batch: ``indices`` (a range or int64 array) and one array per output."""
        layout = {key: (a.dtype.str, a.shape[1:]) for key, a in arrays.items()}
        if not self.layout:
            self.layout = layout
            # Kept open across batches and closed in close().
            self.files = {k: open(self.directory / f"{k}.bin", "wb") for k in layout}  # noqa: SIM115
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
            self.files[key].write(np.ascontiguousarray(array))
        self._append_indices(indices)
        self.rows += len(indices)

    def _continues(self, indices: range | np.ndarray) -> bool:
        """Whether ``indices`` are exactly the samples that follow the rows so far."""
        n = len(indices)
        if n == 0:
            return True
        if int(indices[0]) != self.rows or int(indices[-1]) != self.rows + n - 1:
            return False
        return isinstance(indices, range) or bool(np.all(np.diff(indices) == 1))

    def _append_indices(self, indices: range | np.ndarray) -> None:
        if self.sequential and self._continues(indices):
            return
        if self.sequential:
            # First batch out of order: write down the indices the order implied so far.
            self.sequential = False
            self.files[INDEX] = open(self.directory / f"{INDEX}.bin", "wb")  # noqa: SIM115
            self.files[INDEX].write(np.arange(self.rows, dtype=np.int64))
        self.files[INDEX].write(np.asarray(indices, dtype=np.int64))

    def close(self, kind: str | None) -> None:
        for file in self.files.values():
            file.close()
        layout = {k: [d, list(s)] for k, (d, s) in self.layout.items()}
        meta = {"rows": self.rows, "kind": kind, "layout": layout, "sequential": self.sequential}
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
        self.sequential: bool = meta.get("sequential", False)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.bin"

    def array(self, key: str) -> np.ndarray:
        if key == INDEX and self.sequential:
            return np.arange(self.rows, dtype=np.int64)
        dtype, shape = (np.dtype(np.int64), ()) if key == INDEX else self.layout[key]
        if self.rows == 0:
            return np.empty((0, *shape), dtype)
        return np.memmap(self.path(key), dtype, "r", shape=(self.rows, *shape))

    def indices(self, start: int, stop: int) -> np.ndarray:
        """Dataset indices of rows ``start:stop``."""
        stop = min(stop, self.rows)
        if self.sequential:
            return np.arange(start, stop, dtype=np.int64)
        return np.asarray(self.array(INDEX)[start:stop])


def read_shards(root: Path) -> list[Shard]:
    return [Shard(d) for d in sorted(root.glob("rank*")) if d.is_dir()]
