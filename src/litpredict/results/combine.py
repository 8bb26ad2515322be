"""Combining members' predictions row by row: vote, mean, prob_mean; and what members must share.

Members must have predicted the same samples, from the same data and datamodule config;
their rows pair by sample id where they have ids (a member listing the same ids in another
order is read in the first member's order), never by position alone
(:mod:`litpredict.results.pairing`). Arrays are combined in row chunks (members are
memory-mapped), so an ensemble of large outputs never holds them whole. ``mean`` sums in
float64 and casts back to the members' dtype, so identical members give the member back
bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from litpredict.process.errors import UserError
from litpredict.results.pairing import (
    SamplesDiffer,
    data_difference,
    data_record,
    row_order,
    rows,
)
from litpredict.rundir.predictions import RunOutputs

METHODS = ("mean", "vote", "prob_mean")
CHUNK_ROWS = 1 << 16
PROBABILITY_TOLERANCE = 1e-3  # how far a row of probabilities may sum from 1
# DataLoader keys of a datamodule config (conf/loader/default.yaml): they change batches,
# never which samples are predicted, so members may differ in them.
LOADER_KEYS = frozenset(
    {"batch_size", "train_batch_size", "num_workers", "pin_memory", "persistent_workers"}
)


class EnsembleError(UserError):
    """Members that cannot be combined, or a method that does not fit their outputs."""


def data_identity(run: RunOutputs) -> Any:
    """What says two runs predicted the same samples: the data files' hashes and the
    datamodule config (without DataLoader keys). File paths and mtimes are left out."""
    data = [
        {k: v for k, v in entry.items() if k not in ("path", "mtime")}
        for entry in run.manifest.get("data") or []
    ]
    config = run.manifest.get("config") or {}
    datamodule = config.get("datamodule") or {}
    return {
        "data": data,
        "datamodule": {k: v for k, v in datamodule.items() if k not in LOADER_KEYS},
        "split": config.get("split", "predict"),
    }


def check_members(members: Sequence[RunOutputs]) -> list[np.ndarray | None]:
    """Refuse members whose data fingerprint, samples, row count or output shapes differ.

    Returns each member's row order: which of its rows holds each of the first member's
    samples (None: the same row; see :func:`litpredict.results.pairing.row_order`)."""
    if len(members) < 1:
        raise EnsembleError("no members to combine", "select at least one complete job")
    first = members[0]
    fix = "ensemble only jobs of one sweep over one predict dataset (select them with --jobs)"
    orders: list[np.ndarray | None] = [None]
    for other in members[1:]:
        pair = f"{first.run_dir.name} and {other.run_dir.name}"
        if data_identity(other) != data_identity(first):
            raise EnsembleError(f"{pair} predicted different data ({_why(first, other)})", fix)
        if other.num_predictions != first.num_predictions:
            raise EnsembleError(
                f"{pair} differ in row count ({first.num_predictions} vs {other.num_predictions})",
                fix,
            )
        if other.shapes() != first.shapes():
            raise EnsembleError(
                f"{pair} differ in output shape ({_shapes(first)} vs {_shapes(other)})",
                "ensemble only checkpoints of one model (same outputs, shapes and dtypes)",
            )
        try:
            orders.append(row_order(first, other))
        except SamplesDiffer as error:
            raise EnsembleError(error.problem, fix) from None
    return orders


def _why(first: RunOutputs, other: RunOutputs) -> str:
    if data_record(first) != data_record(other):
        return data_difference(first, other)
    one, two = data_identity(first)["datamodule"], data_identity(other)["datamodule"]
    keys = sorted(k for k in one.keys() | two.keys() if one.get(k) != two.get(k))
    shown = "; ".join(f"{k}: {one.get(k)!r} vs {two.get(k)!r}" for k in keys[:3])
    return f"their data fingerprints differ: datamodule {shown}"


def _shapes(run: RunOutputs) -> str:
    return ", ".join(f"{k}: {list(s)} {d}" for k, (s, d) in run.shapes().items())


def default_method(arrays: Sequence[np.ndarray]) -> str:
    """``vote`` for class ids (integers), ``mean`` for anything else."""
    return "vote" if np.issubdtype(arrays[0].dtype, np.integer) else "mean"


def combine(
    arrays: Sequence[np.ndarray],
    method: str,
    key: str = "prediction",
    orders: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """One (N, ...) array from the members' arrays of one output key, in the first member's
    sample order (``orders``: of :func:`check_members`; None: every member in that order)."""
    if method not in METHODS:  # never taken for another method
        raise EnsembleError(f"unknown method {method!r}", f"pass one of {', '.join(METHODS)}")
    orders = list(orders) if orders is not None else [None] * len(arrays)
    first = arrays[0]
    if method == "vote":
        if not (np.issubdtype(first.dtype, np.integer) or first.dtype == np.bool_):
            raise EnsembleError(
                f"--method vote needs class ids, but output {key!r} is {first.dtype}",
                "use --method mean (or prob_mean for probabilities)",
            )
        return _chunked(arrays, orders, _vote)
    if not np.issubdtype(first.dtype, np.floating):
        raise EnsembleError(
            f"--method {method} averages real values, but output {key!r} holds {first.dtype}",
            "use --method vote for class ids",
        )
    if method == "prob_mean":
        _check_probabilities(arrays, key)
    return _chunked(arrays, orders, _mean)


def _chunked(arrays: Sequence[np.ndarray], orders: Sequence[np.ndarray | None], rows_of):
    out = np.empty(arrays[0].shape, dtype=arrays[0].dtype)
    for start in range(0, len(out), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        out[start:stop] = rows_of(
            [rows(a, order, start, stop) for a, order in zip(arrays, orders, strict=True)]
        )
    return out


def _mean(blocks: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(blocks[0].shape, dtype=np.float64)
    for block in blocks:
        total += block
    return (total / len(blocks)).astype(blocks[0].dtype)


def _vote(blocks: list[np.ndarray]) -> np.ndarray:
    """Element-wise majority; a tie goes to the lowest class id."""
    stacked = np.stack(blocks)  # (K, rows, ...)
    best = np.zeros(stacked.shape[1:], dtype=stacked.dtype)
    best_count = np.zeros(stacked.shape[1:], dtype=np.int64)
    for value in np.unique(stacked):  # ascending: a later class must have strictly more votes
        count = (stacked == value).sum(axis=0)
        more = count > best_count
        best[more], best_count[more] = value, count[more]
    return best


def _check_probabilities(arrays: Sequence[np.ndarray], key: str) -> None:
    for n, array in enumerate(arrays):
        if array.ndim < 2:
            raise EnsembleError(
                f"--method prob_mean needs (N, classes) probabilities; output {key!r} of "
                f"member {n} has shape {list(array.shape)}",
                "use --method mean for regression outputs",
            )
        for start in range(0, len(array), CHUNK_ROWS):
            block = np.asarray(array[start : start + CHUNK_ROWS], dtype=np.float64)
            sums = block.sum(axis=-1)
            if (block < 0).any() or np.abs(sums - 1).max(initial=0) > PROBABILITY_TOLERANCE:
                raise EnsembleError(
                    f"--method prob_mean needs probabilities, but rows of output {key!r} of "
                    f"member {n} are negative or do not sum to 1 (logits?)",
                    "predict probabilities (e.g. model.probabilities=true), or use --method mean",
                )
