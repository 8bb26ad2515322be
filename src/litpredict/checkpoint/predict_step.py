"""Models without their own ``predict_step`` predict from the inputs of ``(x, y)`` batches.

Lightning's default ``predict_step`` passes the whole batch to ``forward``: for labelled
data that is the ``(x, y)`` tuple, which a lightning-hydra-template module (or a wrapped
torchvision backbone) cannot take. The writer still gets the whole batch, so the labels
still feed the metrics.
"""

from __future__ import annotations

from functools import partial
from typing import Any

LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning")


def has_own_predict_step(model: Any) -> bool:
    """Whether a class of the user's (not Lightning's LightningModule) defines predict_step."""
    for cls in type(model).__mro__:
        if "predict_step" in vars(cls):
            return cls.__module__.split(".")[0] not in LIGHTNING_PACKAGES
    return False


def inputs_of(batch: Any) -> Any:
    """``x`` of an ``(x, y)`` or ``(x,)`` batch; any other batch as it is."""
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
        return batch[0]
    return batch


def predict_from_inputs(model: Any) -> None:
    """Give ``model`` a predict_step that calls it on the batch's inputs, unless it has one.

    A ``partial``, not a bound method or a callable object: the model still pickles
    (ddp_spawn sends it to its workers) with the step pointing at the copy, and
    Lightning's ``is_overridden`` understands it.
    """
    if not has_own_predict_step(model):
        model.predict_step = partial(inputs_predict_step, model)


def inputs_predict_step(model: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
    return model(inputs_of(batch))
