"""The model for a checkpoint: its class from config, its arguments and weights from the file.

The class comes from the config (``model._target_``) and must be a LightningModule; its
arguments from the checkpoint's saved hyperparameters where it has them, else from the
config (see arguments.py); then the checkpoint's weights, loaded strictly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig

from litpredict.checkpoint.reading import trained_model_target
from litpredict.checkpoint.targets import check_targets
from litpredict.process.argv import import_failure
from litpredict.process.errors import CheckpointError
from litpredict.trainer.lightning_api import is_lightning_module


def training_model(cfg: DictConfig, explicit: Iterable[str] = ()):
    """A fresh model from config (for train.py); refuses anything but a LightningModule.

    Its arguments follow the same rules as a predicting model's (model_arguments.py): with
    another class than the group file's, that file's keys reach it only if set again, and
    keys it does not take are dropped unless ``explicit`` (the command line's) names them.
    """
    from litpredict.checkpoint.arguments import group_defaults, init_arguments

    cls = model_class(cfg.model._target_)
    check_targets(cfg.model, "model", "LightningModule")
    return cls(**init_arguments(cls, cfg.model, {}, explicit, group_defaults("model")))


def predicting_model(cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str]):
    """The model for ``checkpoint``: class from config, weights and hparams from the checkpoint.

    ``compile`` (off by default) wraps it in ``torch.compile``: compiling costs seconds to
    minutes up front, so it pays only on long runs; ``true`` or a mode such as
    ``max-autotune``. Lightning unwraps the compiled module and predicts with it.
    """
    from litpredict.checkpoint.arguments import group_defaults
    from litpredict.checkpoint.predict_step import predict_from_inputs

    check_targets(cfg.model, "model", "LightningModule")  # nested nodes too, before any call
    # A model from the training run's config owes nothing to the model group's file.
    defaults = {} if cfg.get("training_run") else group_defaults("model")
    cls, arguments = model_arguments(cfg.model, checkpoint, explicit, defaults)
    model = constructed(cls, arguments, checkpoint)
    load_weights(model, checkpoint)
    predict_from_inputs(model)
    return compiled(model.eval(), cfg.get("compile", False))


def argument_sources(
    cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str]
) -> dict[str, str]:
    """Where each model argument came from: the command line, the checkpoint's saved
    hyperparameters, the training run's config or litpredict's config."""
    from litpredict.checkpoint.arguments import PRIVATE_KEYS

    model_cfg, from_run = cfg.model, cfg.get("training_run") is not None
    explicit = {key.split(".")[0] for key in explicit}
    saved = set(checkpoint.get("hyper_parameters") or {}) - set(PRIVATE_KEYS)
    configured = set(model_cfg) - set(PRIVATE_KEYS)
    sources = {}
    for key in sorted(saved | configured):
        if key in explicit:
            sources[key] = "command line"
        elif key in saved and not _is_node(model_cfg.get(key)):
            sources[key] = "checkpoint"
        else:
            sources[key] = "training run config" if from_run else "config"
    return sources


def _is_node(value: Any) -> bool:
    return isinstance(value, Mapping) or hasattr(value, "keys")


def constructed(cls: type, arguments: dict[str, Any], checkpoint: Mapping[str, Any]) -> Any:
    """``cls(**arguments)``; a required argument the checkpoint held only as a pickled object
    (dropped: it could run code) is named with the ways to supply it."""
    import inspect

    from litpredict.checkpoint.reading import dropped_hyperparameters

    required = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self"
        and p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    missing = [name for name in required if name not in arguments]
    if missing:
        dropped = set(dropped_hyperparameters(checkpoint))
        pickled = [m for m in missing if m in dropped]
        why = (
            f" ({', '.join(pickled)}: held in the checkpoint only as pickled objects, which "
            "litpredict never loads since they could run code)"
            if pickled
            else ""
        )
        raise CheckpointError(
            f"{cls.__qualname__} needs {', '.join(missing)}, which nothing supplies{why}",
            "predict from inside the training run directory (its config is found beside "
            "the checkpoint), or supply them: ++model.KEY={_target_: pkg.Class, ...} or a "
            "model config group of yours on hydra.searchpath",
        )
    return cls(**arguments)


def compiled(model: Any, mode: bool | str | None) -> Any:
    """``model`` compiled with ``torch.compile`` (``mode`` true or a mode name), else as is."""
    if not mode:
        return model
    import torch

    return torch.compile(model) if mode is True else torch.compile(model, mode=str(mode))


def model_class(target: str) -> type:
    """Import ``target`` and accept it only if it is a LightningModule subclass."""
    from hydra.utils import get_object

    try:
        cls = get_object(target)
    except Exception as err:
        raise CheckpointError(
            f"cannot import the model class {target!r}: {import_failure(err)}",
            "set model._target_ to an importable LightningModule, e.g. pkg.module.Class",
        ) from None
    if not is_lightning_module(cls):
        raise CheckpointError(
            f"{target!r} is not a pytorch_lightning.LightningModule (nor lightning) subclass; "
            "refusing to call it",
            "set model._target_ to your LightningModule class",
        )
    return cls


def model_arguments(
    model_cfg: DictConfig,
    checkpoint: Mapping[str, Any],
    explicit: Iterable[str] = (),
    group_defaults: Mapping[str, Any] | None = None,
) -> tuple[type, dict[str, Any]]:
    """The model class and its init arguments for this checkpoint (see model_arguments.py).

    The class must be the one the checkpoint was trained with (litpredict's own entry),
    or a subclass of it.
    """
    from litpredict.checkpoint.arguments import init_arguments

    target = model_cfg.get("_target_")
    if not target:
        raise CheckpointError(
            "the model config has no _target_", "pick model=linear|cnn|lstm or set model._target_"
        )
    cls = model_class(target)
    trained = trained_model_target(checkpoint)
    if trained and trained != target and not _is_same_or_base(trained, cls):
        raise CheckpointError(
            f"the checkpoint was trained with {trained}, but the config builds {target}",
            "choose the model the checkpoint belongs to (model=... or experiment=...)",
        )
    return cls, init_arguments(cls, model_cfg, checkpoint, explicit, group_defaults)


def _is_same_or_base(trained: str, cls: type) -> bool:
    """Whether ``trained`` names ``cls`` or one of its bases, without importing it.

    ``pkg.Class`` matches a class defined in ``pkg.module`` (re-exported names); a
    subclass may predict for its base's checkpoint.
    """
    module, _, name = trained.rpartition(".")
    return any(
        c.__qualname__ == name and (c.__module__ == module or c.__module__.startswith(f"{module}."))
        for c in cls.__mro__
    )


def load_weights(model: Any, checkpoint: Mapping[str, Any]) -> None:
    """Load the state dict strictly, reporting differing keys and shapes briefly.

    A checkpoint of a module compiled before saving (``net._orig_mod.model.0.weight``)
    loads into the plain module: see :func:`uncompiled_state_dict`.
    """
    own = model.state_dict()
    saved = uncompiled_state_dict(checkpoint["state_dict"], own)
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    resized = [
        f"{k}: checkpoint {tuple(saved[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in saved
        and hasattr(saved[k], "shape")
        and tuple(saved[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or resized:
        lines = []
        if resized:
            lines.append(
                "shapes differ: " + "; ".join(resized[:5]) + (" ..." if len(resized) > 5 else "")
            )
        if missing:
            lines.append(f"missing in checkpoint: {_few(missing)}")
        if unexpected:
            lines.append(f"not in model: {_few(unexpected)}")
        if saved is not checkpoint["state_dict"]:
            lines.append("(saved from a torch.compile'd module: '_orig_mod.' dropped where it fit)")
        raise CheckpointError(
            f"the checkpoint does not fit {type(model).__qualname__}: " + "\n  ".join(lines),
            "choose the model (and its sizes) the checkpoint was trained with",
        )
    try:
        model.on_load_checkpoint({**checkpoint, "state_dict": saved})
    except Exception as error:
        from litpredict.checkpoint.reading import dropped_hyperparameters
        from litpredict.process.errors import first_line

        dropped = dropped_hyperparameters(checkpoint)
        if not dropped:
            raise
        raise CheckpointError(
            f"{type(model).__qualname__}.on_load_checkpoint failed ({first_line(error)}); it "
            f"may need what the checkpoint holds only as pickled objects ({', '.join(dropped)}), "
            "which litpredict never loads, since unpickling them could run any code",
            "predict with the project's own loading code, or supply those objects through "
            "the model config (++model.KEY=...)",
        ) from None
    model.load_state_dict(saved, strict=True)


def uncompiled_state_dict(saved: Mapping[str, Any], own: Mapping[str, Any]) -> Mapping[str, Any]:
    """``saved`` with the ``_orig_mod`` segments of ``torch.compile`` dropped from its keys.

    Only keys the model lacks, and only where the shorter key is the model's; anything
    else stays as saved, so a checkpoint that does not fit is still reported as such.
    """
    from litpredict.checkpoint.reading import is_compiled, uncompiled_key

    if not is_compiled(saved) or is_compiled(own):
        return saved
    renamed: dict[str, Any] = {}
    for key, value in saved.items():
        plain = key if key in own else uncompiled_key(key)
        fits = plain in own and plain not in saved and plain not in renamed
        renamed[plain if fits else key] = value
    return renamed


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
