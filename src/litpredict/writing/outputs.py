"""What one predict_step batch becomes on disk: named NumPy arrays and its dataset indices."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from litpredict.errors import PredictionError

TARGET = "__target__"  # the batch's labels, kept beside the outputs for metrics
_KEY = re.compile(r"[A-Za-z0-9_.-]+")


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
        bad = [
            k for k in prediction if not isinstance(k, str) or not _KEY.fullmatch(k) or k == TARGET
        ]
        if bad:
            raise PredictionError(
                f"prediction keys {bad} cannot name files",
                "use keys of letters, digits, '_', '.' and '-'",
            )
        return "dict", dict(prediction)
    raise PredictionError(
        f"predict_step returned {type(prediction).__name__}, not tensors",
        "return a tensor, a tuple of tensors or a dict of tensors with one row per sample",
    )


def batch_arrays(prediction: Any, batch: Any, size: int) -> tuple[str, dict[str, np.ndarray]]:
    """(kind, {key: array}) of one batch's outputs, plus its labels under :data:`TARGET`."""
    kind, outputs = split_outputs(prediction)
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
