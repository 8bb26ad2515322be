"""Checkpoint files: finding one, reading it safely, and litpredict's own entry in it.

Checkpoints are read with ``weights_only=True``, always: a checkpoint from anywhere
must never run code. Pickled objects in it (lightning-hydra-template saves an ``nn.Module``
and ``functools.partial`` among its hyperparameters) are read as inert placeholders and
dropped. The model is built from one in :mod:`litpredict.trainer.build`.

A checkpoint is never unpacked past what its size makes plausible: ``torch.save`` stores
tensors uncompressed in its zip archive, so its members add up to about the file's own
size. An archive whose members declare far more (a zero tensor of 800 MB deflated into
1 MB) is refused from its zip directory alone, before anything is inflated: above
:data:`INFLATION_FACTOR` times the file's size plus :data:`INFLATION_MARGIN`.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litpredict.process.errors import CheckpointError

LITPREDICT_KEY = "litpredict"  # our own entry in checkpoints written by train.py
DROPPED_KEY = "litpredict_dropped_hyperparameters"  # set by read_checkpoint, never saved
# torch.compile's OptimizedModule holds the module as ``_orig_mod``: a module compiled before
# saving (lightning-hydra-template's ``model.compile=true``) names its weights
# ``net._orig_mod.model.0.weight``.
COMPILED_SEGMENT = "_orig_mod"
# How far a checkpoint may inflate beyond its size on disk (see the module's docstring):
# generous for a torch.save archive (about 1x) or one compressed by hand (floats deflate
# to ~90%), far below a bomb of zeros (1000x).
INFLATION_FACTOR = 20
INFLATION_MARGIN = 64 << 20  # small checkpoints: their pickles and headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointFile:
    """The checkpoint a run reads: the local file, and how the manifest names it.

    For a URL the file is the cache's verified copy and ``source`` the URL as typed, with
    its SHA-256 and ETag/version in ``remote``; for a local file ``source`` is its path.
    """

    path: Path
    source: str
    remote: dict[str, Any] = field(default_factory=dict)


def checkpoint_file(value: Any) -> CheckpointFile:
    """The checkpoint ``ckpt_path`` names; a URL is fetched (once per node) into the cache."""
    from litpredict.remote.urls import is_url

    if is_url(value):
        from litpredict.remote.cache import fetch

        fetched = fetch(str(value).strip())
        if fetched.size == 0:
            raise CheckpointError(
                f"checkpoint {fetched.url!r} is empty (0 bytes)", "pass a complete checkpoint"
            )
        return CheckpointFile(fetched.path, fetched.url, fetched.record())
    path = checkpoint_path(value)
    return CheckpointFile(path, str(path.resolve()))


def checkpoint_path(value: Any) -> Path:
    """The checkpoint file, after checks that give a clear message for each way it is wrong.

    A URL gives the cache's copy of it (:func:`checkpoint_file`).
    """
    from litpredict.remote.urls import is_url

    if is_url(value):
        return checkpoint_file(value).path
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


def read_checkpoint(path: Path, shown: str | None = None) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors a user can act on.

    The messages never repeat torch's advice to pass ``weights_only=False``: that
    would run whatever code the file carries. They name ``shown`` (the URL of a fetched
    checkpoint) where given, else ``path``. A file from a URL is read the same way: no
    source, http included, ever unpickles code.
    """
    import torch

    shown = shown or str(path)
    with path.open("rb") as file:
        head = file.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise CheckpointError(
            f"{shown!r} is not a PyTorch checkpoint "
            "(neither a torch.save zip archive nor a pickle)",
            "pass a .ckpt file written by Lightning (Trainer.fit, ModelCheckpoint)",
        )
    if head[:2] == b"PK" and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {shown!r} is truncated or corrupt (its zip directory is missing)",
            "copy or download the checkpoint again, completely",
        )
    if head[:2] == b"PK":
        _check_inflation(path, shown)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(err))
        if not unsafe:
            raise _unreadable(shown) from None
        checkpoint = _read_with_inert_objects(path, unsafe.group(1), shown)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError) as err:
        raise _unreadable(shown) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{shown!r} is not a Lightning checkpoint (no 'state_dict')",
            "pass a .ckpt written by Trainer.fit / ModelCheckpoint",
        )
    _check_entries(shown, checkpoint)
    return checkpoint


def _check_entries(shown: str, checkpoint: dict[str, Any]) -> None:
    """The entries everything after reading relies on: ``state_dict`` a mapping of names,
    ``hyper_parameters`` (when there) a mapping of init arguments."""
    fix = (
        "pass a checkpoint written by Lightning (Trainer.fit, ModelCheckpoint, "
        "trainer.save_checkpoint); this one was written or edited by other means"
    )
    state = checkpoint["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"checkpoint {shown!r}: its state_dict is {_kind(state)}, not a mapping of "
            "parameter names to tensors",
            fix,
        )
    names = [k for k in state if not isinstance(k, str)]
    if names:
        raise CheckpointError(
            f"checkpoint {shown!r}: its state_dict has a key that is not a parameter "
            f"name ({names[0]!r})",
            fix,
        )
    hyperparameters = checkpoint.get("hyper_parameters")
    if hyperparameters is not None and not isinstance(hyperparameters, Mapping):
        raise CheckpointError(
            f"checkpoint {shown!r}: its hyper_parameters are {_kind(hyperparameters)}, "
            "not a mapping of init arguments (what save_hyperparameters() stores)",
            fix,
        )


def _kind(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _check_inflation(path: Path, shown: str) -> None:
    """Refuse a zip archive whose members declare far more bytes than the file holds.

    Reads only the zip's central directory (each member's declared size); torch's reader
    allocates what a member declares, so nothing larger is ever inflated.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # torch.load says what is wrong with it
    inflated = sum(m.file_size for m in members)
    size = path.stat().st_size
    if inflated <= INFLATION_FACTOR * size + INFLATION_MARGIN:
        return
    largest = max(members, key=lambda m: m.file_size)
    raise CheckpointError(
        f"checkpoint {shown!r} would inflate to {_size(inflated)} from {_size(size)} "
        f"on disk (its member {largest.filename} alone: {_size(largest.file_size)} from "
        f"{_size(largest.compress_size)}); a torch.save checkpoint stores its tensors "
        "uncompressed, so litpredict refuses to unpack this one, which could fill memory",
        "pass the checkpoint as torch.save / Lightning wrote it; if you trust this file, "
        "unzip it and save it again with torch.save",
    )


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def _read_with_inert_objects(path: Path, first_unsafe: str, shown: str) -> dict[str, Any]:
    """The checkpoint with every pickled object of an unknown class read as an inert one.

    Hyperparameters holding one are dropped (the model is built from the config instead),
    and so are other entries predicting does not need (optimizer states, callbacks); a
    ``state_dict`` holding one is refused as before.
    """
    from litpredict.checkpoint.inert_objects import (
        inert_names_in,
        load_with_placeholders,
        unsafe_globals,
    )

    try:
        names = unsafe_globals(path)
        checkpoint = load_with_placeholders(path, names)
    except Exception:
        raise _pickled_object(shown, first_unsafe) from None
    if not isinstance(checkpoint, dict):
        raise _pickled_object(shown, first_unsafe)
    in_weights = sorted(set(inert_names_in(checkpoint.get("state_dict"))))
    if in_weights:
        raise _pickled_object(shown, in_weights[0])
    hyperparameters = checkpoint.get("hyper_parameters")
    dropped = []
    if isinstance(hyperparameters, dict):
        dropped = [k for k, v in hyperparameters.items() if any(inert_names_in({k: v}))]
        checkpoint["hyper_parameters"] = {
            k: v for k, v in hyperparameters.items() if k not in dropped
        }
    elif any(inert_names_in(hyperparameters)):
        checkpoint["hyper_parameters"] = {}
        dropped = ["hyper_parameters"]
    others = [k for k, v in checkpoint.items() if k != "state_dict" and any(inert_names_in(v))]
    for key in others:
        del checkpoint[key]
    # The console gets what changes for the user, one stable line; the log file the classes.
    log.debug(
        "checkpoint %s: pickled classes: %s",
        shown.rpartition("/")[2],
        ", ".join(sorted(set(names))),
    )
    log.info(
        "checkpoint %s: hyperparameters dropped (built from the config instead): %s%s "
        "(pickled objects, never run; their classes are in the log file)",
        shown.rpartition("/")[2],
        ", ".join(sorted(map(str, dropped))) or "none",
        f"; entries dropped: {', '.join(sorted(map(str, others)))}" if others else "",
    )
    checkpoint[DROPPED_KEY] = [str(k) for k in dropped]
    return checkpoint


def dropped_hyperparameters(checkpoint: Mapping[str, Any]) -> list[str]:
    """The hyperparameter keys :func:`read_checkpoint` dropped because they held objects."""
    return list(checkpoint.get(DROPPED_KEY) or [])


def is_compiled(state_dict: Mapping[str, Any]) -> bool:
    """Whether ``state_dict`` was saved from a ``torch.compile``-wrapped module (see
    :data:`COMPILED_SEGMENT`): some key holds the segment ``_orig_mod`` before a name."""
    return any(COMPILED_SEGMENT in str(key).split(".")[:-1] for key in state_dict)


def uncompiled_key(key: str) -> str:
    """``key`` without its ``_orig_mod`` segments: the name the plain module has."""
    *path, name = key.split(".")
    return ".".join([*(p for p in path if p != COMPILED_SEGMENT), name])


def _pickled_object(shown: str, name: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {shown!r} holds a pickled Python object ({name}) where litpredict "
        "needs data; loading it could run code, so litpredict refuses it",
        "save checkpoints whose state_dict holds only tensors, in a trusted environment",
    )


def _unreadable(shown: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {shown!r} cannot be read: it is truncated or corrupt",
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
