"""Label metrics of finished predictions: MSE/MAE for regression, accuracy for classes."""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 1 << 18


def label_metrics(
    outputs: dict[str, np.ndarray], kind: str, targets: np.ndarray | None
) -> dict[str, float]:
    """Metrics of a single-tensor prediction against the batches' labels, where they fit.

    Class ids or class scores against integer labels give ``accuracy``; real values
    of the labels' shape give ``mse`` and ``mae``. Anything else gives no metric.
    """
    if targets is None or kind != "tensor":
        return {}
    prediction = outputs["prediction"]
    n = len(prediction)
    integer_labels = np.issubdtype(targets.dtype, np.integer) and targets.ndim == 1
    if integer_labels and (prediction.ndim == 1 or prediction.ndim == 2):
        correct = 0
        for start in range(0, n, CHUNK_ROWS):
            p = np.asarray(prediction[start : start + CHUNK_ROWS])
            if p.ndim == 2:
                p = p.argmax(axis=1)
            correct += int((p == targets[start : start + CHUNK_ROWS]).sum())
        return {"accuracy": correct / n}
    if prediction.shape == targets.shape and np.issubdtype(prediction.dtype, np.floating):
        squared = absolute = 0.0
        for start in range(0, n, CHUNK_ROWS):
            diff = (
                np.asarray(prediction[start : start + CHUNK_ROWS], dtype=np.float64)
                - targets[start : start + CHUNK_ROWS]
            )
            squared += float(np.square(diff).sum())
            absolute += float(np.abs(diff).sum())
        size = prediction.size
        return {"mse": squared / size, "mae": absolute / size}
    return {}
