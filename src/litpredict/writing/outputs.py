"""What one predict_step batch becomes on disk: named NumPy arrays and its dataset indices."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from litpredict.process.errors import PredictionError

TARGET = "__target__"  # the batch's labels, kept beside the outputs for metrics
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
# A table's own columns, and the shard file of sample indices: never an output key.
RESERVED_KEYS = ("index", "id", TARGET)
MAX_KEY_LENGTH = 100  # a key names files (<key>.bin, predictions/<key>.npy) and columns


def split_outputs(prediction: Any) -> tuple[str, dict[str, torch.Tensor]]:
    """A predict_step output as (kind, {key: tensor}): a tensor, a tuple or a dict of tensors."""
    if isinstance(prediction, torch.Tensor):
        return "tensor", {"prediction": prediction}
    if isinstance(prediction, (tuple, list)) and all(
        isinstance(t, torch.Tensor) for t in prediction
    ):
        return "tuple", {str(i): t for i, t in enumerate(prediction)}
    if isinstance(prediction, dict) and all(
        isinstance(t, torch.Tensor) for t in prediction.values()
    ):
        _check_keys(list(prediction))
        return "dict", dict(prediction)
    strings = _string_outputs(prediction)
    if strings:
        raise PredictionError(
            f"predict_step returned strings ({', '.join(strings)}) beside tensors; outputs "
            "are written as arrays of one row per sample, strings are not",
            "return tensors only (a label as its class index, e.g. "
            "torch.tensor([classes.index(s) for s in labels])); to name each row, give the "
            "predict dataset sample_ids: they are written as ids.txt and an id column",
        )
    raise PredictionError(
        f"predict_step returned {type(prediction).__name__}, not tensors",
        "return a tensor, a tuple of tensors or a dict of tensors with one row per sample",
    )


def _string_outputs(prediction: Any) -> list[str]:
    """The keys (or positions) of ``prediction`` that hold a string or a list of strings."""
    if isinstance(prediction, dict):
        items = list(prediction.items())
    elif isinstance(prediction, (tuple, list)):
        items = list(enumerate(prediction))
    else:
        return []

    def is_strings(value: Any) -> bool:
        if isinstance(value, str):
            return True
        return isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value)

    return [repr(key) for key, value in items if is_strings(value)]


def _check_keys(keys: list) -> None:
    if not keys:
        raise PredictionError(
            "predict_step returned an empty dict: no outputs to write",
            "return a tensor, a tuple of tensors or a dict of tensors with one row per sample",
        )
    bad = [k for k in keys if not isinstance(k, str) or not _KEY.fullmatch(k)]
    if bad:
        raise PredictionError(
            f"prediction keys {bad} cannot name files",
            "use keys of letters, digits, '_', '.' and '-'",
        )
    reserved = [k for k in keys if k in RESERVED_KEYS]
    if reserved:
        raise PredictionError(
            f"prediction keys {reserved} are reserved: {list(RESERVED_KEYS)} name the "
            "table's own columns and litpredict's files",
            "rename those keys in predict_step (e.g. 'sample_index', 'label')",
        )
    long = [k for k in keys if len(k) > MAX_KEY_LENGTH]
    if long:
        raise PredictionError(
            f"prediction key {long[0][:40]!r}... is {len(long[0])} characters long; "
            f"keys name files, at most {MAX_KEY_LENGTH} characters",
            f"use prediction keys of at most {MAX_KEY_LENGTH} characters",
        )


def batch_arrays(prediction: Any, batch: Any, size: int) -> tuple[str, dict[str, np.ndarray]]:
    """(kind, {key: array}) of one batch's outputs, plus its labels under :data:`TARGET`."""
    kind, outputs = split_outputs(prediction)
    if not outputs:
        raise PredictionError(
            "predict_step returned an empty tuple: no outputs to write",
            "return a tensor, a tuple of tensors or a dict of tensors with one row per sample",
        )
    zero_dim = [key for key, t in outputs.items() if t.ndim == 0]
    if zero_dim:
        raise PredictionError(
            f"output {zero_dim[0]!r} is a 0-dim tensor (one number for the whole batch of "
            f"{size} samples)",
            "return one row per sample from predict_step: shape (batch_size, ...), e.g. "
            "loss.reshape(1).expand(batch_size) or the per-sample values",
        )
    arrays = {key: _numpy(t) for key, t in outputs.items()}
    labels = _labels(batch, size)
    if labels is not None:
        arrays[TARGET] = _numpy(labels)
    return kind, arrays


def _labels(batch: Any, size: int) -> torch.Tensor | None:
    """``y`` of an ``(x, y)`` batch with one label row per sample, else None."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        target = batch[1]
        if isinstance(target, torch.Tensor) and target.ndim >= 1 and len(target) == size:
            return target
    return None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()


def index_array(batch_indices: Any) -> range | np.ndarray:
    """A batch's dataset indices: a ``range`` as it is (O(1)), anything else as int64."""
    if isinstance(batch_indices, range):
        return batch_indices
    return np.asarray(batch_indices, dtype=np.int64)
