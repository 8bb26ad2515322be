"""A datamodule's init arguments: the user's class never gets the replaced group's keys.

``datamodule._target_=pkg.MyData +datamodule.path=x`` replaces the class of the chosen
group (``demo_linear``), not its keys: ``seed``, ``n_train`` and the loader keys that
group file pulls in (``/loader@_here_``) are still in the node. As for the model
(:mod:`litpredict.checkpoint.arguments`), when ``_target_`` names another class than the
group file's, a key of that file reaches the class only if it is set again (on the
command line, or to another value by an experiment or the user's config); keys the class
does not take are dropped unless the command line sets them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from litpredict.process.errors import UserError

log = logging.getLogger(__name__)

GROUP = "datamodule"
HYDRA_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")


def datamodule_keys(
    node: DictConfig, cls: type, explicit: Iterable[str], group: Mapping[str, Any]
) -> list[str]:
    """The keys of ``node`` that go to ``cls`` (compared unresolved, as the group file has them)."""
    explicit = set(explicit)
    raw = OmegaConf.to_container(node, resolve=False)
    target = raw.get("_target_")
    keep = [k for k in raw if k not in HYDRA_KEYS]
    if group and group.get("_target_") not in (None, target):
        keep = [k for k in keep if k in explicit or k not in group or group[k] != raw[k]]
    parameters = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(k for k in keep if k not in parameters and k in explicit)
        if unknown:
            raise UserError(
                f"{cls.__qualname__} takes no arguments {unknown} (from the command line)",
                "drop those datamodule.* overrides, or set datamodule._target_ to the class "
                "they belong to",
            )
        ignored = sorted(k for k in keep if k not in parameters)
        if ignored:
            log.info("datamodule keys %s ignored: %s does not take them", ignored, cls.__qualname__)
        keep = [k for k in keep if k in parameters]
    return keep + [k for k in raw if k in HYDRA_KEYS and k != "_target_"]


def explicit_datamodule_keys() -> set[str]:
    """The ``datamodule.*`` keys the command line sets; none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    from pathlib import Path

    from litpredict.process.job import Job

    overrides = list(HydraConfig.get().overrides.task)
    return Job(run_dir=Path("."), overrides=overrides).explicit_keys(GROUP)


def datamodule_group_defaults() -> dict[str, Any]:
    """The chosen ``datamodule/<choice>.yaml`` node with the group files it includes.

    Its ``defaults`` list may pull other groups into it (``/loader@_here_: default``):
    their keys count as the group's too.
    """
    from litpredict.checkpoint.arguments import group_defaults

    node = group_defaults(GROUP)
    merged: dict[str, Any] = {}
    for entry in node.pop("defaults", None) or []:
        if isinstance(entry, Mapping):
            for name, choice in entry.items():
                group, _, package = str(name).lstrip("/").partition("@")
                if package == "_here_":
                    merged.update(_group_file_node(group, str(choice)))
    merged.update(node)
    return merged


def _group_file_node(group: str, choice: str) -> dict[str, Any]:
    from litpredict.checkpoint.arguments import group_file_node

    node = group_file_node(group, choice)
    node.pop("defaults", None)
    return node


def datamodule_record(datamodule: Any, num_samples: int | None) -> dict[str, Any]:
    """What the manifest says of any datamodule: its class and its predict dataset's length."""
    cls = type(datamodule)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "num_samples": num_samples}
