"""Every ``_target_`` a config names is imported and type-checked before anything calls it.

Hydra's ``instantiate`` calls whatever ``_target_`` names: ``os.system``, or a library
function that unpickles a file. A config is not trusted because it came from a run
directory (``reproduce`` reads one from a manifest), so each object's target must be a
class of the kind its place in the config expects (a ``model`` a LightningModule, a
``trainer`` a Trainer, ...), and every nested ``_target_`` (a trainer's logger, a
datamodule's transform) a class of one of :data:`NESTED_KINDS`. Functions are never
accepted. Either Lightning package (``pytorch_lightning`` or ``lightning.pytorch``) counts.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from litpredict.process.errors import UserError

# Where each kind's base class lives, in both Lightning packages: "module:attribute".
_LIGHTNING = ("pytorch_lightning", "lightning.pytorch")
KINDS: dict[str, tuple[str, ...]] = {
    "LightningModule": tuple(f"{p}:LightningModule" for p in _LIGHTNING),
    "LightningDataModule": tuple(f"{p}:LightningDataModule" for p in _LIGHTNING),
    "Trainer": tuple(f"{p}:Trainer" for p in _LIGHTNING),
    "Callback": tuple(f"{p}.callbacks:Callback" for p in _LIGHTNING),
    "PredictionWriter": ("litpredict.writing:PredictionWriter",),
}
# What a nested ``_target_`` may build: Lightning's parts, torch modules, optimizers and
# LR schedulers, torchvision transforms.
NESTED_KINDS: tuple[str, ...] = (
    *(f"{p}.callbacks:Callback" for p in _LIGHTNING),
    *(f"{p}.loggers:Logger" for p in _LIGHTNING),
    *(f"{p}.strategies:Strategy" for p in _LIGHTNING),
    *(f"{p}.accelerators:Accelerator" for p in _LIGHTNING),
    *(f"{p}.plugins:Precision" for p in _LIGHTNING),
    *(f"{p}:LightningDataModule" for p in _LIGHTNING),
    "torch.nn:Module",
    # lightning-hydra-template's model configs: optimizer/scheduler nodes with _partial_
    "torch.optim:Optimizer",
    "torch.optim.lr_scheduler:LRScheduler",
)
NESTED_MODULES = ("torchvision.transforms.",)  # classes under these modules are accepted


class UnsafeTarget(UserError):
    """A ``_target_`` that is not of the kind its place in the config builds."""


def _bases(specs: tuple[str, ...]) -> tuple[type, ...]:
    """The base classes ``specs`` name that can be imported here (a missing package is skipped)."""
    found = []
    for spec in specs:
        module, _, name = spec.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def load_class(target: Any, where: str) -> type | Any:
    """The object ``target`` names, imported but not called; an error names ``where``."""
    from hydra.utils import get_object

    if not isinstance(target, str) or not target:
        raise UnsafeTarget(
            f"{where}._target_ is {target!r}, not a dotted class path",
            f"set {where}._target_ to a class, e.g. pkg.module.Class",
        )
    try:
        return get_object(target)
    except Exception as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else (lines or [type(error).__name__])[0]
        raise UnsafeTarget(
            f"cannot import {where}._target_ {target!r}: {reason}",
            f"set {where}._target_ to an importable class (is its package installed?)",
        ) from None


def nested_targets(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """``(config path, _target_)`` for ``node`` and every mapping below it that has one."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, (DictConfig, ListConfig)):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield where, node["_target_"]
        for key, value in node.items():
            if key != "_target_":
                yield from nested_targets(value, f"{where}.{key}")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from nested_targets(value, f"{where}[{index}]")


def check_targets(node: Any, where: str, kind: str) -> list[str]:
    """Refuse ``node`` unless its ``_target_`` is a ``kind`` class and every nested one is
    a class of :data:`NESTED_KINDS`; nothing is called. Returns ``["where: target", ...]``."""
    found = list(nested_targets(node, where))
    if not found or found[0][0] != where:
        raise UnsafeTarget(f"{where} has no _target_", f"set {where}._target_ to a {kind} class")
    checked = []
    for path, target in found:
        cls = load_class(target, path)
        if path == where:
            bases, expected = _bases(KINDS[kind]), kind
        else:
            bases, expected = (
                _bases(NESTED_KINDS),
                "Lightning callback, logger, plugin, torch module, optimizer or LR scheduler",
            )
        is_class = inspect.isclass(cls)
        if not (is_class and (issubclass(cls, bases) or _nested_module(cls, path != where))):
            what = "a class of another kind" if is_class else f"a {type(cls).__name__}"
            raise UnsafeTarget(
                f"{path}._target_ {target!r} is not a {expected} class ({what}); "
                "refusing to call it",
                f"set {path}._target_ to a {expected} class",
            )
        checked.append(f"{path}: {target}")
    return checked


def _nested_module(cls: type, nested: bool) -> bool:
    return nested and any(cls.__module__.startswith(prefix) for prefix in NESTED_MODULES)
