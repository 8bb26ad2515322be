"""Checkpoint files: finding one, reading it safely, and litpredict's own entry in it.

Checkpoints are read with ``weights_only=True``, always: a checkpoint from anywhere
must never run code. The model is built from one in :mod:`litpredict.build`.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

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


def _unreadable(path: Path) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {str(path)!r} cannot be read: it is truncated or corrupt",
        "copy or download the checkpoint again, completely",
    )


def record_model_target(checkpoint: MutableMapping[str, Any], model: Any) -> None:
    """Write litpredict's entry into a checkpoint being saved: the class path of ``model``.

    So predict can refuse a config that builds another model (:func:`trained_model_target`).
    """
    cls = type(model)
    checkpoint[LITPREDICT_KEY] = {"model_target": f"{cls.__module__}.{cls.__qualname__}"}


def trained_model_target(checkpoint: Mapping[str, Any]) -> str | None:
    """The class path :func:`record_model_target` wrote; None in checkpoints not from train.py."""
    return (checkpoint.get(LITPREDICT_KEY) or {}).get("model_target")
