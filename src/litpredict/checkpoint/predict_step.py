"""Models without their own ``predict_step`` predict from the inputs of ``(x, y)`` batches.

Lightning's default ``predict_step`` passes the whole batch to ``forward``: for labelled
data that is the ``(x, y)`` tuple, which a lightning-hydra-template module (or a wrapped
torchvision backbone) cannot take. The writer still gets the whole batch, so the labels
still feed the metrics. Either step, the model's own or this one, names the batch's shapes
when the model's code fails on it: the usual cause is data that does not fit the model.
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
    """Give ``model`` a predict_step that calls it on the batch's inputs, unless it has one;
    either step names the batch's shapes when it fails.

    A ``partial``, not a bound method or a callable object: the model still pickles
    (ddp_spawn sends it to its workers) with the step pointing at the copy, and
    Lightning's ``is_overridden`` understands it.
    """
    step = type(model).predict_step if has_own_predict_step(model) else inputs_predict_step
    bound = partial(step_naming_the_batch, step, model)
    # Lightning asks the step's signature every batch (does it take batch_idx?): computed
    # for a partial that is ~19 us a batch; stated once it is ~2.
    bound.__signature__ = _signature_after_model(step)
    model.predict_step = bound


def _signature_after_model(step: Any) -> Any:
    """``step``'s signature without its first parameter (the model the partial binds)."""
    import inspect

    try:
        signature = inspect.signature(step)
    except (TypeError, ValueError):  # a builtin without one: let inspect work it out
        return None
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def inputs_predict_step(model: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
    return model(inputs_of(batch))


def step_naming_the_batch(step: Any, model: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
    """``step(model, batch, ...)``; an error of any type raised by the model's own code
    becomes one that names the batch's shapes and says to check the data against the model."""
    from litpredict.process.errors import (
        DATA_MISFIT_FIX,
        PredictionError,
        UserError,
        describe,
        first_line,
    )

    try:
        return step(model, batch, *args, **kwargs)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as error:
        raise PredictionError(
            f"the model's predict_step failed on a batch of {shapes_of(batch)}: "
            f"{first_line(describe(error))}",
            DATA_MISFIT_FIX,
        ) from error


def shapes_of(batch: Any) -> str:
    """``inputs (8, 12), labels (8,)``-like words for a batch of tensors, tuples or dicts."""
    shape = getattr(batch, "shape", None)
    if shape is not None:
        return f"shape {tuple(shape)}"
    if isinstance(batch, (tuple, list)):
        return "(" + ", ".join(shapes_of(item) for item in batch) + ")"
    if isinstance(batch, dict):
        return "{" + ", ".join(f"{k}: {shapes_of(v)}" for k, v in batch.items()) + "}"
    return type(batch).__name__
