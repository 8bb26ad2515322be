"""Which Lightning package a run uses, and that package's API: never the two mixed.

``lightning`` (``import lightning as L``, its trainer in ``lightning.pytorch``) and
``pytorch_lightning`` are two module trees with distinct classes: each Trainer refuses the
other's modules, callbacks and datamodules. A run's package is the one its model class
derives from (its MRO), and everything litpredict hands that model's Trainer comes from
the same package:

- targets in config (``pytorch_lightning.Trainer``, loggers, callbacks) are mapped to the
  model's package by :func:`LightningAPI.target`, the one place that does it;
- litpredict's own callbacks are written once as a mixin; each has a ``pytorch_lightning``
  class and a ``lightning`` twin (``Lightning<Name>`` in the same module, built on first
  use, so ``lightning`` stays optional and the twin pickles for ``ddp_spawn``);
- a datamodule of the other package (litpredict's own derive from ``pytorch_lightning``)
  is wrapped by :func:`LightningAPI.datamodule`, which forwards the hooks it overrides.

Nothing here imports a Lightning package until its API is used.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PYTORCH_LIGHTNING = "pytorch_lightning"
LIGHTNING = "lightning.pytorch"
PACKAGES = (PYTORCH_LIGHTNING, LIGHTNING)
TWIN_PREFIX = "Lightning"  # PredictionWriter (pytorch_lightning) -> LightningPredictionWriter


class NoBatchHooks:
    """For a callback with nothing to do per batch: its predict batch hooks are not there.

    Lightning calls each callback's ``on_predict_batch_start`` and ``..._end`` every batch
    inside a profiler context (~2.5 us a call here, 0.3% of an LSTM's batch for four
    callbacks), unless the hook is not callable (``_call_callback_hooks``): so these are
    None. ``tests/test_writer.py`` predicts with such callbacks under a real Trainer.
    """

    on_predict_batch_start = None
    on_predict_batch_end = None


# The hooks a Trainer calls on a datamodule; an adapter forwards those the datamodule overrides.
DATAMODULE_HOOKS = (
    "prepare_data",
    "setup",
    "teardown",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "predict_dataloader",
    "transfer_batch_to_device",
    "on_before_batch_transfer",
    "on_after_batch_transfer",
    "state_dict",
    "load_state_dict",
    "on_exception",
)


def package_of_module(module: str) -> str | None:
    """The Lightning package a module path belongs to: ``lightning.pytorch.core`` -> LIGHTNING."""
    if module == PYTORCH_LIGHTNING or module.startswith(f"{PYTORCH_LIGHTNING}."):
        return PYTORCH_LIGHTNING
    if module == LIGHTNING or module.startswith(f"{LIGHTNING}."):
        return LIGHTNING
    return None


def package_of(obj: Any) -> str | None:
    """The Lightning package ``obj`` (a class or an instance) derives from; None if neither.

    Read from the module names along the MRO, so nothing is imported to decide.
    """
    cls = obj if inspect.isclass(obj) else type(obj)
    for klass in cls.__mro__:
        package = package_of_module(klass.__module__ or "")
        if package:
            return package
    return None


@dataclass(frozen=True)
class LightningAPI:
    """One Lightning package's classes and functions, imported on first use."""

    package: str

    @property
    def module(self) -> Any:
        return importlib.import_module(self.package)

    def __getattr__(self, name: str) -> Any:
        # Trainer, Callback, LightningModule, LightningDataModule, seed_everything, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.module, name)

    @property
    def BasePredictionWriter(self) -> type:  # a class, named as Lightning names it
        return importlib.import_module(f"{self.package}.callbacks").BasePredictionWriter

    @property
    def rank_zero_only(self) -> Any:
        return importlib.import_module(f"{self.package}.utilities.rank_zero").rank_zero_only

    def owns(self, obj: Any) -> bool:
        """Whether ``obj`` (class or instance) belongs to this package."""
        return package_of(obj) == self.package

    def target(self, target: str) -> str:
        """``target`` (a ``_target_``) as this package spells it.

        ``pytorch_lightning.X`` <-> ``lightning.pytorch.X``; a litpredict class that
        derives from the other package -> its twin; anything else unchanged.
        """
        other = LIGHTNING if self.package == PYTORCH_LIGHTNING else PYTORCH_LIGHTNING
        if target == other or target.startswith(f"{other}."):
            return self.package + target[len(other) :]
        if target.startswith("litpredict."):
            module, _, name = target.rpartition(".")
            cls = getattr(importlib.import_module(module), name, None)
            if inspect.isclass(cls) and package_of(cls) not in (None, self.package):
                twin = self.counterpart(cls)
                return f"{twin.__module__}.{twin.__qualname__}"
        return target

    def counterpart(self, cls: type) -> type:
        """``cls`` in this package: itself, the same Lightning class here, or litpredict's twin."""
        if package_of(cls) in (None, self.package):
            return cls
        if package_of_module(cls.__module__):  # a Lightning class: same path, this package
            module = importlib.import_module(self.target(cls.__module__))
            return getattr(module, cls.__qualname__)
        name = cls.__name__[len(TWIN_PREFIX) :] if self.package == PYTORCH_LIGHTNING else None
        name = name or f"{TWIN_PREFIX}{cls.__name__}"
        return getattr(sys.modules[cls.__module__], name)

    def datamodule(self, datamodule: Any) -> Any:
        """``datamodule`` as this package's Trainer accepts it: itself, or wrapped."""
        if datamodule is None or package_of(datamodule) in (None, self.package):
            return datamodule
        adapter = getattr(sys.modules[__name__], _adapter_name(self.package))
        return adapter(datamodule)


def api(package: str) -> LightningAPI:
    if package not in PACKAGES:
        raise ValueError(f"not a Lightning package: {package!r}")
    return LightningAPI(package)


def api_of(obj: Any) -> LightningAPI:
    """The API of the package ``obj`` derives from (``pytorch_lightning`` if neither)."""
    return api(package_of(obj) or PYTORCH_LIGHTNING)


def is_lightning_module(cls: Any) -> bool:
    """Whether ``cls`` is a LightningModule subclass of either package."""
    package = package_of(cls) if inspect.isclass(cls) else None
    return package is not None and issubclass(cls, api(package).LightningModule)


def twins(module_name: str) -> Callable[[str], type]:
    """A module ``__getattr__`` that builds ``Lightning<Name>`` twins on first use.

    ``<Name>`` is a class of that module deriving from ``pytorch_lightning``; its twin has
    the same bases from ``lightning.pytorch`` and the same class body, and is stored in the
    module so pickling finds it (``ddp_spawn`` workers unpickle by module and name). A
    class whose methods call ``super()`` is written as ``class Name(NameMixin, PLBase)``
    with an empty body, so the copied body holds no method bound to the original class.
    """

    def __getattr__(name: str) -> type:
        module = sys.modules[module_name]
        original = None
        if name.startswith(TWIN_PREFIX):
            original = module.__dict__.get(name[len(TWIN_PREFIX) :])
        if not inspect.isclass(original) or package_of(original) != PYTORCH_LIGHTNING:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        lightning = api(LIGHTNING)
        bases = tuple(lightning.counterpart(base) for base in original.__bases__)
        body = {k: v for k, v in original.__dict__.items() if k not in ("__dict__", "__weakref__")}
        twin = type(name, bases, {**body, "__module__": module_name, "__qualname__": name})
        setattr(module, name, twin)
        return twin

    return __getattr__


def _adapter_name(package: str) -> str:
    return "DataModuleFor_" + package.replace(".", "_")


def _datamodule_adapter(package: str) -> type:
    """A datamodule class of ``package`` that runs a datamodule of the other package.

    It forwards exactly the hooks the wrapped datamodule overrides (the Trainer asks
    which are overridden, per instance), the ``trainer`` it is given, and the few
    attributes Lightning reads from a datamodule.
    """
    from lightning_utilities.core.overrides import is_overridden

    own = api(package)

    class Adapter(own.LightningDataModule):
        def __init__(self, inner: Any) -> None:
            self.__dict__["inner"] = inner
            super().__init__()
            parent = api_of(inner).LightningDataModule
            for hook in DATAMODULE_HOOKS:
                if is_overridden(hook, inner, parent):
                    setattr(self, hook, getattr(inner, hook))
            self.allow_zero_length_dataloader_with_multiple_devices = getattr(
                inner, "allow_zero_length_dataloader_with_multiple_devices", False
            )

        @property
        def trainer(self) -> Any:
            return self.inner.trainer

        @trainer.setter
        def trainer(self, trainer: Any) -> None:
            self.inner.trainer = trainer

        @property
        def hparams_initial(self) -> Any:
            return self.inner.hparams_initial

        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") or name == "inner":
                raise AttributeError(name)
            return getattr(self.inner, name)

    name = _adapter_name(package)
    Adapter.__name__ = Adapter.__qualname__ = name
    Adapter.__module__ = __name__
    return Adapter


def __getattr__(name: str) -> type:
    for package in PACKAGES:
        if name == _adapter_name(package):
            adapter = _datamodule_adapter(package)
            setattr(sys.modules[__name__], name, adapter)
            return adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
