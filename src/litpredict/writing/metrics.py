"""Label metrics of finished predictions, computed by torchmetrics over row chunks.

Only where they fit (:class:`LabelFit`): labels that are not the model's targets (an
autoencoder's inputs, another task's labels) would give numbers such as ``accuracy: 0.0``
that mean nothing. ``metrics`` (conf/predict.yaml) names them: ``null`` keeps the
defaults (``accuracy`` for class ids against class scores or ids, else ``mse`` and ``mae``
for real-valued outputs of the labels' shape, else none, logged); a list picks from
:data:`REGRESSION` and :data:`CLASSIFICATION` and must fit; ``[]`` is none. The merged
arrays are memory maps: each metric is updated chunk by chunk, never with the whole
dataset in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


class MetricMisfit(UserError):
    """A metric named in ``metrics`` that does not fit the predictions and their labels."""


@dataclass(frozen=True)
class LabelFit:
    """Which metrics fit a prediction and its labels; each ``why_*`` is None where they fit.

    Class metrics need integer class ids of shape (N,) against class scores (N, C) or
    class ids (N,), with the labels in [0, C); regression metrics need labels of the
    outputs' shape (numbers).
    """

    prediction: str  # the outputs' shape, "(N, 10)", for messages
    labels: str  # the labels' shape
    why_not_classes: str | None
    why_not_regression: str | None
    num_classes: int = 0
    float_outputs: bool = False
    class_labels: bool = False  # integer labels of shape (N,)

    @property
    def misfit(self) -> str:
        """One line: the labels' and outputs' shapes (the default metrics' log line)."""
        return f"labels of shape {self.labels} do not fit outputs of shape {self.prediction}"


def label_fit(prediction: np.ndarray, targets: np.ndarray) -> LabelFit:
    """How ``targets`` fit ``prediction`` (arrays or memory maps: ranges read in chunks)."""
    numbers = prediction.dtype.kind in "biuf" and targets.dtype.kind in "biuf"
    why_not_regression = None
    if prediction.shape != targets.shape:
        why_not_regression = "regression metrics need labels of the outputs' shape"
    elif not numbers:
        why_not_regression = "regression metrics need numbers"
    why_not_classes, num_classes = _class_fit(prediction, targets)
    return LabelFit(
        _shape(prediction),
        _shape(targets),
        why_not_classes,
        why_not_regression,
        num_classes=num_classes,
        float_outputs=prediction.dtype.kind == "f",
        class_labels=targets.dtype.kind in "iu" and targets.ndim == 1,
    )


def _shape(array: np.ndarray) -> str:
    """``(N, 28, 28)``: the shape with the number of samples as N."""
    return str(("N", *array.shape[1:])).replace("'", "")


def _class_fit(prediction: np.ndarray, targets: np.ndarray) -> tuple[str | None, int]:
    """(why class metrics do not fit, or None; the number of classes)."""
    if targets.dtype.kind not in "iu" or targets.ndim != 1:
        return (
            "class metrics need integer labels of shape (N,), not "
            f"{targets.dtype} labels of shape {_shape(targets)}",
            0,
        )
    scores = prediction.ndim == 2 and prediction.dtype.kind in "iuf"
    ids = prediction.ndim == 1 and prediction.dtype.kind in "iu"
    if not (scores or ids):
        return (
            "class metrics need class scores of shape (N, C) or integer class ids of shape "
            f"(N,), not {prediction.dtype} outputs of shape {_shape(prediction)}",
            0,
        )
    low, high = _range(targets)
    if scores:
        width = int(prediction.shape[1])
        if low < 0 or high >= width:
            return f"labels span [{low}, {high}], the outputs score classes [0, {width}) only", 0
        if width < 2:  # one value per sample (a regressor's (N, 1)) against labels all 0
            return "class metrics need scores of 2 or more classes, not outputs of shape (N, 1)", 0
        return None, width
    predicted_low, predicted_high = _range(prediction)
    if min(low, predicted_low) < 0:
        return f"class ids start at 0, but the labels or outputs reach {min(low, predicted_low)}", 0
    return None, max(high, predicted_high, 1) + 1


def _range(array: np.ndarray) -> tuple[int, int]:
    """(smallest, largest) value of a 1-D array, a chunk at a time; (0, 0) when empty."""
    chunks = [array[start : start + CHUNK_ROWS] for start in range(0, len(array), CHUNK_ROWS)]
    if not chunks:
        return 0, 0
    return min(int(np.min(c)) for c in chunks), max(int(np.max(c)) for c in chunks)


def label_metrics(
    outputs: dict[str, np.ndarray],
    kind: str,
    targets: np.ndarray | None,
    names: Sequence[str] | None = None,
) -> dict[str, float]:
    """Metrics of a single-tensor prediction against the batches' labels, where they fit.

    ``names`` None (the defaults): ``accuracy`` where class metrics fit, else ``mse`` and
    ``mae`` where regression metrics fit real-valued outputs, else none (one log line
    says why). Named metrics must fit (:class:`LabelFit`): one that does not is a
    :class:`MetricMisfit`. ``[]`` computes none.
    """
    if names is not None and not names:
        return {}
    if targets is None:
        if names:
            log.warning("metrics %s not computed: the predict data has no labels", list(names))
        return {}
    prediction = outputs.get("prediction") if kind == "tensor" else None
    if prediction is None:
        if names:
            raise _not_one_tensor(names, kind, outputs)
        log.info("no label metrics: the predictions are a %s of outputs, not one tensor", kind)
        return {}
    if len(targets) == 0:
        return {}
    fit = label_fit(prediction, targets)
    classes, regression = chosen_metrics(names, fit)
    results = {
        **_streamed(
            {n: CLASSIFICATION[n](fit.num_classes) for n in classes}, prediction, targets, True
        ),
        **_streamed({n: REGRESSION[n]() for n in regression}, prediction, targets, False),
    }
    order = list(names) if names is not None else [*classes, *regression]
    return {n: results[n] for n in order if n in results}


def chosen_metrics(names: Sequence[str] | None, fit: LabelFit) -> tuple[list[str], list[str]]:
    """(class metrics, regression metrics) to compute; raises for a named one that misfits."""
    if names is None:
        if fit.why_not_classes is None:
            return list(DEFAULT_CLASSIFICATION), []
        if fit.why_not_regression is None and fit.float_outputs:
            return [], list(DEFAULT_REGRESSION)
        log.info("no label metrics: %s (%s)", fit.misfit, _reason(fit))
        return [], []
    classes = [n for n in names if n in CLASSIFICATION]
    regression = [n for n in names if n in REGRESSION]
    misfits = [
        *(classes if fit.why_not_classes else []),
        *(regression if fit.why_not_regression else []),
    ]
    if misfits:
        why = [
            *([fit.why_not_classes] if set(misfits) & set(CLASSIFICATION) else []),
            *([fit.why_not_regression] if set(misfits) & set(REGRESSION) else []),
        ]
        raise MetricMisfit(
            f"metrics {misfits} do not fit: {fit.misfit}; {'; '.join(map(str, why))}", _fix(fit)
        )
    return classes, regression


def check_named_metrics(
    names: Sequence[str] | None, kind: str, outputs: dict[str, np.ndarray], targets: Any
) -> None:
    """Raise :class:`MetricMisfit` now, on a first batch, for a named metric that misfits."""
    if not names or targets is None:
        return
    prediction = outputs.get("prediction") if kind == "tensor" else None
    if prediction is None:
        raise _not_one_tensor(names, kind, outputs)
    chosen_metrics(names, label_fit(prediction, targets))


def _reason(fit: LabelFit) -> str:
    """Why the defaults give none: for class ids, what the class metrics lack; else the shapes."""
    if fit.class_labels and fit.why_not_classes:
        return fit.why_not_classes
    if fit.why_not_regression:
        return fit.why_not_regression
    return "the outputs are integers: name regression metrics to compare them (metrics=[mse])"


def _fix(fit: LabelFit) -> str:
    fitting = [
        *([f"metrics=[{','.join(CLASSIFICATION)}]"] if fit.why_not_classes is None else []),
        *([f"metrics=[{','.join(REGRESSION)}]"] if fit.why_not_regression is None else []),
    ]
    if fitting:
        return f"set metrics=[] for none, or metrics that fit: {' or '.join(fitting)}"
    return (
        "set metrics=[] (no metric fits these labels), or predict with labels that fit: "
        "integer class ids (N,) for class scores (N, C) or class ids (N,); labels of the "
        "outputs' shape for regression"
    )


def _not_one_tensor(names: Sequence[str], kind: str, outputs: dict[str, Any]) -> MetricMisfit:
    return MetricMisfit(
        f"metrics {list(names)} need one tensor of predictions, but predict_step returns a "
        f"{kind} of {len(outputs)} ({', '.join(map(str, outputs))})",
        "set metrics=[] (or compute the metrics from the written outputs)",
    )


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
