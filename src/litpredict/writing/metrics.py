"""Label metrics of finished predictions, computed by torchmetrics over row chunks.

``metrics`` (conf/predict.yaml) names them: ``null`` keeps the defaults (``mse`` and
``mae`` for real-valued labels of the prediction's shape, ``accuracy`` for class labels
against class ids or scores); a list picks from :data:`REGRESSION` and
:data:`CLASSIFICATION`. The merged arrays are memory maps: each metric is updated chunk
by chunk, never with the whole dataset in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from litpredict.process.errors import UserError

log = logging.getLogger(__name__)

CHUNK_ROWS = 1 << 18


def _regression(name: str) -> Callable[[], Any]:
    def make() -> Any:
        import torchmetrics

        built = {
            "mse": lambda: torchmetrics.MeanSquaredError(),
            "rmse": lambda: torchmetrics.MeanSquaredError(squared=False),
            "mae": lambda: torchmetrics.MeanAbsoluteError(),
            "r2": lambda: torchmetrics.R2Score(),
        }[name]()
        return built.set_dtype(_float64())

    return make


def _classification(name: str) -> Callable[[int], Any]:
    def make(num_classes: int) -> Any:
        from torchmetrics import classification as c

        cls, average = {
            "accuracy": (c.MulticlassAccuracy, "micro"),
            "f1": (c.MulticlassF1Score, "macro"),
            "precision": (c.MulticlassPrecision, "macro"),
            "recall": (c.MulticlassRecall, "macro"),
        }[name]
        return cls(num_classes=num_classes, average=average)

    return make


def _float64() -> Any:
    import torch

    return torch.float64


REGRESSION = {name: _regression(name) for name in ("mse", "mae", "rmse", "r2")}
CLASSIFICATION = {name: _classification(name) for name in ("accuracy", "f1", "precision", "recall")}
DEFAULT_REGRESSION = ("mse", "mae")
DEFAULT_CLASSIFICATION = ("accuracy",)


class UnknownMetric(UserError):
    """A ``metrics`` entry litpredict does not compute."""


def checked_metric_names(names: Any) -> list[str] | None:
    """``names`` as a list of known metric names; ``None`` (the defaults) stays ``None``."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    known = [*REGRESSION, *CLASSIFICATION]
    unknown = [n for n in names if n not in known]
    if unknown or not isinstance(names, Sequence):
        raise UnknownMetric(
            f"unknown metrics {unknown or names!r}",
            f"set metrics to a list of {known} (regression or class labels), or null for "
            "the defaults",
        )
    return list(names)


def label_metrics(
    outputs: dict[str, np.ndarray],
    kind: str,
    targets: np.ndarray | None,
    names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Metrics of a single-tensor prediction against the batches' labels, where they fit.

    Class ids or class scores against integer labels are classification; real values
    of the labels' shape are regression. A named metric of the other kind is skipped
    (logged); anything else gives no metric.
    """
    if targets is None or kind != "tensor":
        return {}
    prediction = outputs["prediction"]
    integer_labels = np.issubdtype(targets.dtype, np.integer) and targets.ndim == 1
    if integer_labels and prediction.ndim in (1, 2):
        chosen = _chosen(names, DEFAULT_CLASSIFICATION, CLASSIFICATION)
        num_classes = _num_classes(prediction, targets)
        metrics = {n: CLASSIFICATION[n](num_classes) for n in chosen}
        return _streamed(metrics, prediction, targets, classes=True)
    if prediction.shape == targets.shape and np.issubdtype(prediction.dtype, np.floating):
        chosen = _chosen(names, DEFAULT_REGRESSION, REGRESSION)
        return _streamed({n: REGRESSION[n]() for n in chosen}, prediction, targets, classes=False)
    return {}


def _chosen(names: Sequence[str] | None, default: Sequence[str], fitting: dict) -> list[str]:
    if names is None:
        return list(default)
    skipped = [n for n in names if n not in fitting]
    if skipped:
        log.warning("metrics %s skipped: they do not fit these predictions and labels", skipped)
    return [n for n in names if n in fitting]


def _num_classes(prediction: np.ndarray, targets: np.ndarray) -> int:
    """One more than the largest class: of the scores' width, the class ids and the labels."""
    largest = int(prediction.shape[1]) - 1 if prediction.ndim == 2 else 1
    for start in range(0, len(prediction), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        largest = max(largest, int(np.max(targets[start:stop])))
        if prediction.ndim == 1:
            largest = max(largest, int(np.max(prediction[start:stop])))
    return largest + 1


def _streamed(
    metrics: dict[str, Any], prediction: np.ndarray, targets: np.ndarray, classes: bool
) -> dict[str, float]:
    import torch

    if not metrics:
        return {}
    for start in range(0, len(prediction), CHUNK_ROWS):
        stop = start + CHUNK_ROWS
        p = torch.from_numpy(np.array(prediction[start:stop]))
        t = torch.from_numpy(np.array(targets[start:stop]))
        if classes:
            p = p.argmax(dim=1) if p.ndim == 2 else p.long()
            t = t.long()
        else:
            p, t = p.double().reshape(-1), t.double().reshape(-1)
        for name in list(metrics):
            try:
                metrics[name].update(p, t)
            except (ValueError, RuntimeError) as error:  # e.g. negative class labels
                log.warning("metric %s skipped: %s", name, str(error).splitlines()[0])
                del metrics[name]
    return {name: float(metric.compute()) for name, metric in metrics.items()}
