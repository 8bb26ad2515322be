"""Every object litpredict builds from config is built here, in one place.

The model for predicting comes from config and checkpoint together: the class from the
config (``model._target_``), which must be a LightningModule; its arguments from the
checkpoint's saved hyperparameters where it has them, else from the config; then the
checkpoint's weights, loaded strictly.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litpredict.checkpoints import trained_model_target
from litpredict.errors import CheckpointError, first_line


def datamodule(cfg: DictConfig):
    return instantiate(cfg.datamodule, _convert_="all")


def trainer(cfg: DictConfig, callbacks: Sequence[Any] = ()):
    if cfg.trainer.get("strategy") == "ddp_spawn" and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from litpredict.errors import UserError

        raise UserError(
            "trainer.strategy=ddp_spawn inside a SLURM job with several tasks would start "
            "devices x tasks processes",
            "on SLURM (srun starts one task per GPU) pass trainer.strategy=ddp",
        )
    from litpredict.distributed import DestroyProcessGroupAtExit

    callbacks = [*callbacks, DestroyProcessGroupAtExit()]
    return instantiate(cfg.trainer, callbacks=callbacks, _convert_="all")


def writer(cfg: DictConfig, run_dir: Path):
    return instantiate(cfg.writer, output_dir=str(run_dir))


def training_callbacks(cfg: DictConfig) -> list[Any]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def training_model(cfg: DictConfig):
    """A fresh model from config (for train.py); refuses anything but a LightningModule."""
    model_class(cfg.model._target_)
    return instantiate(cfg.model, _convert_="all")


def predicting_model(cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str]):
    """The model for ``checkpoint``: class from config, weights and hparams from the checkpoint.

    ``compile`` (off by default) wraps it in ``torch.compile``: compiling costs seconds to
    minutes up front, so it pays only on long runs; ``true`` or a mode such as
    ``max-autotune``. Lightning unwraps the compiled module and predicts with it.
    """
    cls, arguments = model_arguments(cfg.model, checkpoint, explicit)
    model = cls(**arguments)
    load_weights(model, checkpoint)
    return compiled(model.eval(), cfg.get("compile", False))


def compiled(model: Any, mode: bool | str | None) -> Any:
    """``model`` compiled with ``torch.compile`` (``mode`` true or a mode name), else as is."""
    if not mode:
        return model
    import torch

    return torch.compile(model) if mode is True else torch.compile(model, mode=str(mode))


def model_class(target: str) -> type:
    """Import ``target`` and accept it only if it is a LightningModule subclass."""
    import pytorch_lightning as pl
    from hydra.utils import get_object

    try:
        cls = get_object(target)
    except Exception as err:
        raise CheckpointError(
            f"cannot import the model class {target!r}: {first_line(err)}",
            "set model._target_ to an importable LightningModule, e.g. pkg.module.Class",
        ) from None
    if not (inspect.isclass(cls) and issubclass(cls, pl.LightningModule)):
        raise CheckpointError(
            f"{target!r} is not a pytorch_lightning.LightningModule subclass; refusing to call it",
            "set model._target_ to your LightningModule class",
        )
    return cls


def model_arguments(
    model_cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str] = ()
) -> tuple[type, dict[str, Any]]:
    """The model class and its init arguments for this checkpoint.

    The checkpoint's saved hyperparameters win over the config group's defaults, so
    a checkpoint trained with other settings rebuilds as it was trained. A value the
    user set explicitly (on the command line) that contradicts the checkpoint is an
    error naming the keys: silently predicting with a different model is worse.
    """
    config = OmegaConf.to_container(model_cfg, resolve=True)
    target = config.pop("_target_", None)
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
    saved = dict(checkpoint.get("hyper_parameters") or {})
    for key in ("_target_", "_class_path", "_instantiator"):
        saved.pop(key, None)
    explicit = set(explicit)
    differing = sorted(k for k in saved if k in config and k in explicit and config[k] != saved[k])
    if differing:
        detail = ", ".join(f"{k}: checkpoint={saved[k]!r} config={config[k]!r}" for k in differing)
        raise CheckpointError(
            f"the checkpoint's hyperparameters disagree with the config ({detail})",
            "drop those model.* overrides to use the checkpoint's values",
        )
    config = _accepted(cls, config, keep=explicit)
    arguments = {**config, **saved}
    _check_signature(cls, arguments, saved)
    return cls, arguments


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


def _accepted(cls: type, config: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """Drop config-group defaults the class does not take (``model._target_`` was replaced).

    Keys set on the command line are kept, so a typo there is still an error.
    """
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return config
    return {k: v for k, v in config.items() if k in parameters or k in keep}


def _check_signature(cls: type, arguments: dict[str, Any], saved: Mapping[str, Any]) -> None:
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(k for k in arguments if k not in parameters)
    if unknown:
        source = "checkpoint's hyperparameters" if set(unknown) & set(saved) else "command line"
        raise CheckpointError(
            f"{cls.__qualname__} takes no arguments {unknown} (from the {source}): "
            "is this a checkpoint of another model?",
            "choose the model the checkpoint belongs to (model=... or experiment=...)",
        )


def load_weights(model: Any, checkpoint: Mapping[str, Any]) -> None:
    """Load the state dict strictly, reporting differing keys and shapes briefly."""
    own = model.state_dict()
    saved = checkpoint["state_dict"]
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
        raise CheckpointError(
            f"the checkpoint does not fit {type(model).__qualname__}: " + "\n  ".join(lines),
            "choose the model (and its sizes) the checkpoint was trained with",
        )
    model.on_load_checkpoint(dict(checkpoint))
    model.load_state_dict(saved, strict=True)


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
