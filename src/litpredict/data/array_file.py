"""The user's own features: ``.npy`` (memory-mapped), ``.csv`` or ``.parquet``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from litpredict.data.arrays import ArrayDataset
from litpredict.data.base import ArrayDataModule
from litpredict.process.errors import DataError

SUFFIXES = (".npy", ".csv", ".parquet")


def _existing(path: str | Path, what: str) -> Path:
    """The local file ``path`` names; a URL's is the cache's copy (fetched once per node)."""
    from litpredict.remote.urls import is_url

    if is_url(path):
        from litpredict.remote.cache import fetch

        return fetch(str(path)).path
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"{what} {str(path)!r} does not exist"
            + (" (it is a directory)" if path.is_dir() else ""),
            f"pass an existing {', '.join(SUFFIXES)} file",
        )
    return path


def read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise DataError(
            f"cannot read {str(path)!r} as a .npy array: {err}", "save it with np.save"
        ) from err


def read_table(path: Path, columns: Sequence[str] | None) -> dict:
    """Columns of a CSV or Parquet table (pyarrow arrays), by their one and only name."""
    import pyarrow.csv
    import pyarrow.parquet

    try:
        table = (
            pyarrow.parquet.read_table(path)
            if path.suffix == ".parquet"
            else pyarrow.csv.read_csv(path)
        )
    except Exception as err:
        raise DataError(
            f"cannot read the table {str(path)!r}: {err}", "check the file format"
        ) from err
    names = table.column_names
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise DataError(
            f"the table {str(path)!r} has more than one column named {repeated}",
            "give every column of the header its own name",
        )
    missing = [c for c in columns or [] if c not in names]
    if missing:
        raise DataError(
            f"columns {missing} are not in {str(path)!r} (it has {names})",
            "fix datamodule.feature_columns / datamodule.target_columns",
        )
    return {name: table.column(name) for name in names}


def numeric_columns(path: Path, table: dict, names: Sequence[str]) -> list[np.ndarray]:
    """``names`` of ``table`` as numpy arrays; a non-numeric or empty cell is an error."""
    import pyarrow as pa

    arrays = []
    for name in names:
        column = table[name]
        kind = column.type
        if not (
            pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        ):
            what = "only empty cells" if pa.types.is_null(kind) else f"values of type {kind}"
            raise DataError(
                f"column {name!r} of {str(path)!r} holds {what}, not numbers",
                "pick numeric columns with datamodule.feature_columns=[...] "
                "(and datamodule.target_columns=[...]), or convert that column to numbers",
            )
        if column.null_count:
            first = _first_null(column)
            raise DataError(
                f"column {name!r} of {str(path)!r} has {column.null_count} empty cells "
                f"(the first in data row {first}, counting from 0); they would be NaN features",
                "fill the empty cells or drop those rows",
            )
        arrays.append(column.to_numpy())
    return arrays


def _first_null(column) -> int:
    import pyarrow.compute as pc

    return int(pc.index(pc.is_null(column), True).as_py())


class ArrayFileDataModule(ArrayDataModule):
    """Rows of a file are samples. Targets make batches ``(x, y)``; without them a batch is ``x``.

    Targets come from ``target_path`` (a ``.npy`` with one row per sample) or, for tables,
    from ``target_columns``. ``feature_columns`` picks feature columns (default: all
    columns that are not targets). Fitting holds out the last ``val_fraction`` of rows.
    """

    def __init__(
        self,
        path: str,
        target_path: str | None = None,
        feature_columns: Sequence[str] | None = None,
        target_columns: Sequence[str] | None = None,
        val_fraction: float = 0.1,
        **loader_options,
    ) -> None:
        super().__init__(**loader_options)
        self.path = path
        self.target_path = target_path
        self.feature_columns = list(feature_columns) if feature_columns else None
        self.target_columns = list(target_columns) if target_columns else None
        self.val_fraction = val_fraction

    @property
    def input_files(self) -> list[Path | str]:
        """The files predictions depend on (for the manifest's data fingerprint); URLs as
        typed (fingerprinted by their objects' SHA-256 and ETag)."""
        from litpredict.remote.urls import is_url

        return [p if is_url(p) else Path(p) for p in (self.path, self.target_path) if p]

    def _arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The features (and targets); errors name a URL, not the cache's copy of it."""
        fetched: dict[str, str] = {}  # the cache's copy -> the URL
        try:
            return self._read_arrays(fetched)
        except DataError as error:
            problem = error.problem
            for local, url in fetched.items():
                problem = problem.replace(local, url)
            if problem == error.problem:
                raise
            raise DataError(problem, error.fix) from error

    def _read_arrays(self, fetched: dict[str, str]) -> tuple[np.ndarray, np.ndarray | None]:
        path = _existing(self.path, "the data file")
        fetched[str(path)] = str(self.path)
        if path.suffix not in SUFFIXES:
            raise DataError(f"unsupported data file {str(path)!r}", f"use one of {SUFFIXES}")
        targets = None
        if path.suffix == ".npy":
            features = read_npy(path)
            if features.dtype == object or features.ndim == 0:
                raise DataError(
                    f"{str(path)!r} holds no numeric (N, ...) array", "save a numeric array"
                )
        else:
            wanted = [*(self.feature_columns or []), *(self.target_columns or [])]
            columns = read_table(path, wanted)
            target_names = self.target_columns or []
            names = self.feature_columns or [c for c in columns if c not in target_names]
            features = np.stack(numeric_columns(path, columns, names), axis=1).astype(np.float32)
            if target_names:
                targets = np.stack(numeric_columns(path, columns, target_names), axis=1)
        if self.target_path:
            target_file = _existing(self.target_path, "the target file")
            fetched[str(target_file)] = str(self.target_path)
            targets = read_npy(target_file)
        return features, targets

    def load_predict(self) -> ArrayDataset:
        return ArrayDataset(*self._arrays())

    def load_fit(self) -> tuple[ArrayDataset, ArrayDataset]:
        features, targets = self._arrays()
        if targets is None:
            raise DataError(
                "training needs targets", "pass datamodule.target_path or target_columns"
            )
        cut = len(features) - max(1, int(len(features) * self.val_fraction))
        return (
            ArrayDataset(features[:cut], targets[:cut]),
            ArrayDataset(features[cut:], targets[cut:]),
        )
