"""A model's init arguments for a checkpoint, plumbed as Lightning's ``load_from_checkpoint``.

The config is the user's own and trusted: its nested ``_target_`` nodes (an LHT ``net``, a
``_partial_`` optimizer) are instantiated. The checkpoint is not: its hyperparameters are
plain values only (objects were dropped when it was read); LightningCLI's
``class_path``/``init_args`` sub-modules are rebuilt only if they name an importable
``torch.nn.Module`` subclass. Saved keys win over the config group's defaults; keys the
class does not take are dropped; an explicit command-line value contradicting the
checkpoint is an error.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litpredict.process.errors import CheckpointError, first_line

log = logging.getLogger(__name__)

PRIVATE_KEYS = ("_target_", "_class_path", "_instantiator")  # never init arguments


def init_arguments(
    cls: type,
    model_cfg: DictConfig,
    checkpoint: Mapping[str, Any],
    explicit: Iterable[str] = (),
    group_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments to build ``cls`` for ``checkpoint``.

    ``group_defaults`` is the node of the chosen config group file (``model/linear.yaml``):
    when the config names another class, its values reach the class only if set again.
    """
    explicit = set(explicit)
    config = OmegaConf.to_container(model_cfg, resolve=True)
    target = config.pop("_target_", None)
    config = _without_group_defaults(config, target, group_defaults or {}, explicit)
    saved = {
        k: v
        for k, v in dict(checkpoint.get("hyper_parameters") or {}).items()
        if k not in PRIVATE_KEYS
    }
    from_config = {k for k, v in config.items() if _has_target(v)}
    for key in [
        k for k in saved if k in from_config or (_is_class_path(saved[k]) and k in explicit)
    ]:
        del saved[key]  # the config's own node (or an explicit value) builds it
    differing = sorted(k for k in saved if k in config and k in explicit and config[k] != saved[k])
    if differing:
        detail = ", ".join(f"{k}: checkpoint={saved[k]!r} config={config[k]!r}" for k in differing)
        raise CheckpointError(
            f"the checkpoint's hyperparameters disagree with the config ({detail})",
            "drop those model.* overrides to use the checkpoint's values",
        )
    parameters = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if not takes_any:
        config = {k: v for k, v in config.items() if k in parameters or k in explicit}
        unknown = sorted(k for k in config if k not in parameters)
        if unknown:
            raise CheckpointError(
                f"{cls.__qualname__} takes no arguments {unknown} (from the command line)",
                "drop those model.* overrides, or choose the model they belong to",
            )
        ignored = sorted(k for k in saved if k not in parameters)
        if ignored:
            log.info(
                "checkpoint hyperparameters %s ignored: %s.__init__ does not take them",
                ", ".join(map(str, ignored)),
                cls.__qualname__,
            )
            saved = {k: v for k, v in saved.items() if k not in ignored}
    built = _instantiated(config)
    rebuilt = {k: rebuilt_submodule(v, k) for k, v in saved.items()}
    return {**built, **rebuilt}


def _without_group_defaults(
    config: dict[str, Any], target: Any, group: Mapping[str, Any], explicit: set[str]
) -> dict[str, Any]:
    """``config`` without the values the replaced group file put there.

    Only when ``_target_`` names another class than the group's: then a key keeps its
    value if the user set it (command line, experiment, own config) - it is explicit or
    differs from the group file's.
    """
    if not group or group.get("_target_") in (None, target):
        return config
    return {k: v for k, v in config.items() if k in explicit or k not in group or group[k] != v}


def _instantiated(config: dict[str, Any]) -> dict[str, Any]:
    """The config's values with every nested ``_target_`` node built (the user's config)."""
    if not any(_has_target(v) for v in config.values()):
        return config
    from hydra.utils import instantiate

    return dict(instantiate(OmegaConf.create(config), _convert_="all"))


def _has_target(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "_target_" in value or any(_has_target(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_target(v) for v in value)
    return False


def _is_class_path(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("class_path"), str)


def rebuilt_submodule(value: Any, key: str) -> Any:
    """A LightningCLI ``{class_path, init_args}`` value built as Lightning would; other
    values as they are. Only ``torch.nn.Module`` subclasses are ever called."""
    if isinstance(value, list):
        return [rebuilt_submodule(v, key) for v in value]
    if not isinstance(value, Mapping):
        return value
    if not _is_class_path(value):
        return {k: rebuilt_submodule(v, f"{key}.{k}") for k, v in value.items()}
    cls = module_class(value["class_path"], key)
    arguments = value.get("init_args") or {}
    if not isinstance(arguments, Mapping):
        raise CheckpointError(
            f"the checkpoint's hyperparameter {key!r} has init_args that are not a mapping",
            f"build it from the config instead: ++model.{key.split('.')[0]}=...",
        )
    return cls(**{k: rebuilt_submodule(v, f"{key}.{k}") for k, v in arguments.items()})


def module_class(class_path: str, key: str) -> type:
    """The ``torch.nn.Module`` subclass ``class_path`` names; refused by name otherwise.

    Only modules of packages this process has already imported (torch, the model's own
    package) are imported: a checkpoint cannot make litpredict import anything new.
    """
    import torch

    module_name, _, name = class_path.rpartition(".")
    top = key.split(".")[0]
    fix = f"build it from the config instead: ++model.{top}=... (++model.{top}=null if unused)"
    cls = None
    if module_name and module_name.split(".")[0] in sys.modules:
        try:
            cls = getattr(importlib.import_module(module_name), name, None)
        except Exception as err:
            raise CheckpointError(
                f"the checkpoint's hyperparameter {key!r} names {class_path!r}, which cannot "
                f"be imported: {first_line(err)}",
                fix,
            ) from None
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise CheckpointError(
            f"the checkpoint's hyperparameter {key!r} names {class_path!r}, not an importable "
            "torch.nn.Module subclass; refusing to call it",
            fix,
        )
    return cls


def group_defaults(group: str = "model") -> dict[str, Any]:
    """The chosen config group file's node (``model/linear.yaml``), from the Hydra search path.

    Empty outside a Hydra job or when the file is not found (a structured config).
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choice = HydraConfig.get().runtime.choices.get(group)
    return group_file_node(group, str(choice)) if choice else {}


def group_file_node(group: str, choice: str) -> dict[str, Any]:
    """``<group>/<choice>.yaml``'s node from the Hydra job's search path, ``{}`` if none."""
    from hydra.core.hydra_config import HydraConfig

    for source in HydraConfig.get().runtime.config_sources:
        text = _group_file(source.schema, source.path, f"{group}/{choice}.yaml")
        if text is not None:
            return copy.deepcopy(_parsed_yaml(text))  # callers edit their copy
    return {}


@functools.lru_cache(maxsize=64)
def _parsed_yaml(text: str) -> dict[str, Any]:
    """Parsed once a process for each text: every job of a sweep reads the same files."""
    node = OmegaConf.create(text)
    return OmegaConf.to_container(node) if isinstance(node, DictConfig) else {}


def _group_file(schema: str, root: str, name: str) -> str | None:
    from pathlib import Path

    try:
        if schema == "file":
            path = Path(root) / name
            return path.read_text() if path.is_file() else None
        if schema == "pkg":
            from importlib.resources import files

            resource = files(root.replace("/", ".")).joinpath(name)
            return resource.read_text() if resource.is_file() else None
    except (OSError, ModuleNotFoundError, TypeError):
        return None
    return None
