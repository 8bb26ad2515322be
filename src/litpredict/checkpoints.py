"""Reading checkpoints safely and building the model they belong to.

Checkpoints are read with ``weights_only=True``, always: a checkpoint from anywhere
must never run code. The model class comes from the config (``model._target_``) and
must be a LightningModule; its arguments come from the checkpoint's saved
hyperparameters where it has them, else from the config.
"""

from __future__ import annotations

import inspect
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litpredict.errors import CheckpointError

LITPREDICT_KEY = "litpredict"  # our own entry in checkpoints written by train.py


def checkpoint_path(value: Any) -> Path:
    """The checkpoint file, after checks that give a clear message for each way it is wrong."""
    if value is None or str(value).strip() == "":
        raise CheckpointError("no checkpoint given", "pass ckpt_path=PATH of a .ckpt file")
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist", "pass ckpt_path=PATH of a .ckpt file"
        )
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {str(path)!r} is a directory",
            "pass one .ckpt file, or sweep over many with -m 'ckpt_path=glob(DIR/*.ckpt)'",
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is empty (0 bytes)", "pass a complete checkpoint file"
        )
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors a user can act on.

    The messages never repeat torch's advice to pass ``weights_only=False``: that
    would run whatever code the file carries.
    """
    import torch

    with path.open("rb") as file:
        head = file.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch checkpoint "
            "(neither a torch.save zip archive nor a pickle)",
            "pass a .ckpt file written by Lightning (Trainer.fit, ModelCheckpoint)",
        )
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt (its zip directory is missing)",
            "copy or download the checkpoint again, completely",
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(err))
        if unsafe:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds a pickled Python object ({unsafe.group(1)}); "
                "loading it could run code, so litpredict refuses it",
                "save checkpoints with plain hyperparameters (numbers, strings, lists, dicts; "
                "OmegaConf.to_container(cfg, resolve=True) for configs) in a trusted environment",
            ) from None
        raise _unreadable(path) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as err:
        raise _unreadable(path) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{str(path)!r} is not a Lightning checkpoint (no 'state_dict')",
            "pass a .ckpt written by Trainer.fit / ModelCheckpoint",
        )
    return checkpoint


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _unreadable(path: Path) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {str(path)!r} cannot be read: it is truncated or corrupt",
        "copy or download the checkpoint again, completely",
    )


def model_class(target: str) -> type:
    """Import ``target`` and accept it only if it is a LightningModule subclass."""
    import pytorch_lightning as pl
    from hydra.utils import get_object

    try:
        cls = get_object(target)
    except Exception as err:
        raise CheckpointError(
            f"cannot import the model class {target!r}: {_first_line(err)}",
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
    trained = (checkpoint.get(LITPREDICT_KEY) or {}).get("model_target")
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


def build_model(model_cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str] = ()):
    """The LightningModule of ``model_cfg`` with the checkpoint's weights loaded, in eval mode."""
    cls, arguments = model_arguments(model_cfg, checkpoint, explicit)
    model = cls(**arguments)
    load_weights(model, checkpoint)
    return model.eval()
