"""Which row of one run is which row of another: the same sample, never merely the same place.

Two runs' predictions are set side by side (``compare``, the summary's agreement with the
last job) or combined (``ensemble``) row by row. Row i of each is sample i of *its own*
predict dataset, so rows pair up only when the runs predicted the same samples:

- both runs name their samples (``ids.txt``): rows pair by id. The same ids in another
  order are paired by id; ids that one run has and the other lacks are refused, naming
  some of them.
- neither names them: rows pair by position only when both read the same data, as their
  manifests' ``data`` fingerprints (file contents, not paths) and ``split`` say.
- one does and the other does not: they read different data; refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from litpredict.process.errors import UserError
from litpredict.rundir.predictions import RunOutputs

SHOWN = 3  # ids named in a message


class SamplesDiffer(UserError):
    """Two runs that did not predict the same samples; its problem names the difference."""


def data_record(run: RunOutputs) -> dict[str, Any]:
    """What a run read: its data files' fingerprints (without paths and mtimes: the same
    contents elsewhere are the same data) and the split."""
    data = [
        {k: v for k, v in entry.items() if k not in ("path", "mtime")}
        for entry in run.manifest.get("data") or []
        if isinstance(entry, dict)
    ]
    return {"data": data, "split": (run.manifest.get("config") or {}).get("split", "predict")}


def row_order(reference: RunOutputs, other: RunOutputs) -> np.ndarray | None:
    """Which row of ``other`` holds each sample of ``reference``, in ``reference``'s order.

    ``None`` when row i is the same sample in both; an index array when ``other`` predicted
    the same samples in another order. Raises :class:`SamplesDiffer` when they predicted
    different samples (or cannot be told apart).
    """
    a, b = reference, other
    pair = f"{a.run_dir.name} and {b.run_dir.name}"
    if a.ids is None and b.ids is None:
        if data_record(a) != data_record(b):
            raise SamplesDiffer(f"{pair} predicted different data ({data_difference(a, b)})")
        return None
    if a.ids is None or b.ids is None:
        named, unnamed = (a, b) if a.ids is not None else (b, a)
        raise SamplesDiffer(
            f"{named.run_dir.name} names its samples (ids.txt) and {unnamed.run_dir.name} does "
            "not: they predicted different data"
        )
    if a.ids == b.ids:
        return None
    position = {sample: n for n, sample in enumerate(b.ids)}
    known = set(a.ids)
    missing = [s for s in a.ids if s not in position]
    extra = [s for s in b.ids if s not in known]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {a.run_dir.name}'s ids are not in {b.run_dir.name}'s")
        if extra:
            parts.append(f"{len(extra)} of {b.run_dir.name}'s are not in {a.run_dir.name}'s")
        raise SamplesDiffer(
            f"{pair} predicted different samples: {' and '.join(parts)} "
            f"(e.g. {', '.join(map(repr, (missing or extra)[:SHOWN]))})"
        )
    if len(position) != len(b.ids) or len(known) != len(a.ids):
        raise SamplesDiffer(
            f"{pair} list the same ids in another order, and some ids repeat, so rows cannot "
            "be paired by id"
        )
    return np.fromiter((position[s] for s in a.ids), dtype=np.int64, count=len(a.ids))


def data_difference(a: RunOutputs, b: RunOutputs) -> str:
    """How the data two runs read differ, in a few words (split, or the files)."""
    first, second = data_record(a), data_record(b)
    if first["split"] != second["split"]:
        return f"split {first['split']} vs {second['split']}"
    paths = [
        ", ".join(str(e.get("path")) for e in run.manifest.get("data") or [] if isinstance(e, dict))
        or "no data files"
        for run in (a, b)
    ]
    return f"their data fingerprints differ: {paths[0]} vs {paths[1]}"


def rows(array: np.ndarray, order: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``array`` in the reference's sample order (read, not mapped)."""
    if order is None:
        return np.asarray(array[start:stop])
    return np.asarray(array[order[start:stop]])


def paired(array: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """``array`` in the reference's sample order: itself (still mapped) or a reordered copy."""
    return array if order is None else np.asarray(array[order])
