"""Output formats. Each turns merged arrays into files under staging names.

``arrays`` maps output keys to dense (N, ...) arrays in dataset order, memory-mapped,
so every format streams: tables are written in row chunks, never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from itertools import product
from pathlib import Path

import numpy as np

from litpredict.process.errors import PredictionError
from litpredict.process.signals import interrupts_held

TABLE_CHUNK_ROWS = 1 << 17

# (staged file, final path relative to the run directory)
Staged = list[tuple[Path, str]]


def _npy(arrays: dict[str, np.ndarray], kind: str, ids, staging: Path) -> Staged:
    staged = [(staging / f"{key}.npy", _npy_name(key, kind)) for key in arrays]
    return staged + _ids_file(ids, staging)


def _npy_name(key: str, kind: str) -> str:
    return "predictions.npy" if kind == "tensor" else f"predictions/{key}.npy"


def _ids_file(ids: Sequence[str] | None, staging: Path) -> Staged:
    if ids is None:
        return []
    path = staging / "ids.txt"
    with path.open("w", encoding="utf-8", newline="") as file:
        for sample_id in ids:  # checked when recorded: no id holds a line break
            file.write(f"{sample_id}\n")
    return [(path, "ids.txt")]


def _pt(arrays: dict[str, np.ndarray], kind: str, ids, staging: Path) -> Staged:
    import torch

    tensors = {
        key: torch.from_numpy(np.load(staging / f"{key}.npy", mmap_mode="c")) for key in arrays
    }
    if kind == "tensor":
        payload = next(iter(tensors.values()))
    elif kind == "tuple":
        payload = tuple(tensors.values())
    else:
        payload = tensors
    path = staging / "predictions.pt"
    torch.save(payload, path)
    return [(path, "predictions.pt"), *_ids_file(ids, staging)]


def column_names(key: str, sample_shape: tuple[int, ...]) -> list[str]:
    """``key`` for a scalar per sample, else ``key_i`` (``key_i_j`` ...) per element."""
    if not sample_shape:
        return [key]
    return [f"{key}_" + "_".join(map(str, i)) for i in product(*map(range, sample_shape))]


TABLE_FORMATS = ("parquet", "csv")
TABLE_OWN_COLUMNS = ("index", "id")


def table_columns(shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The prediction columns of outputs of per-sample ``shapes``; refuses any collision.

    ``a`` of width 2 becomes ``a_0``, ``a_1``: a key ``a_1`` beside it would name the
    same column, as would a key ``index`` or ``id``; such outputs are refused rather
    than one silently replacing another.
    """
    owners: dict[str, str] = {name: "the table's own column" for name in TABLE_OWN_COLUMNS}
    names = []
    for key, shape in shapes.items():
        for name in column_names(key, tuple(shape)):
            if name in owners:
                raise PredictionError(
                    f"output {key!r} would write column {name!r}, which is already "
                    f"{owners[name]}: one would replace the other in the table",
                    "rename the outputs so that no key looks like another's expanded column "
                    "(key_0, key_1, ...), or use writer=npy",
                )
            owners[name] = f"a column of output {key!r}"
            names.append(name)
    return names


def _table_chunks(arrays: dict[str, np.ndarray], ids: Sequence[str] | None):
    import pyarrow as pa

    table_columns({key: array.shape[1:] for key, array in arrays.items()})
    n = len(next(iter(arrays.values())))
    for start in range(0, n, TABLE_CHUNK_ROWS):
        stop = min(n, start + TABLE_CHUNK_ROWS)
        columns = {"index": pa.array(np.arange(start, stop, dtype=np.int64))}
        if ids is not None:
            columns["id"] = pa.array(list(ids[start:stop]), type=pa.string())
        for key, array in arrays.items():
            block = np.asarray(array[start:stop]).reshape(stop - start, -1)
            for j, name in enumerate(column_names(key, array.shape[1:])):
                columns[name] = pa.array(block[:, j])
        yield pa.table(columns)


def _table_writer(open_writer: Callable, suffix: str):
    def write(arrays: dict[str, np.ndarray], kind: str, ids, staging: Path) -> Staged:
        path = staging / f"predictions.{suffix}"
        writer = None
        try:
            for table in _table_chunks(arrays, ids):
                writer = writer or open_writer(path, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        return [(path, f"predictions.{suffix}")]

    return write


def _open_parquet(path: Path, schema):
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, schema)


def _open_csv(path: Path, schema):
    import pyarrow.csv as pcsv

    return pcsv.CSVWriter(path, schema)


FORMATS: dict[str, Callable[..., Staged]] = {
    "npy": _npy,
    "pt": _pt,
    "parquet": _table_writer(_open_parquet, "parquet"),
    "csv": _table_writer(_open_csv, "csv"),
}


def publish(staged: Staged, run_dir: Path) -> list[Path]:
    """Move staged files to their final names; SIGINT/SIGTERM wait until all are moved."""
    finals = []
    with interrupts_held():
        for source, relative in staged:
            final = run_dir / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, final)
            finals.append(final)
    return finals
