"""The datamodule of a config: any LightningDataModule class, given only its own keys."""

from __future__ import annotations

from collections.abc import Iterable

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litpredict.checkpoint.targets import check_targets


def build_datamodule(cfg: DictConfig, explicit: Iterable[str] | None = None):
    """The datamodule of ``cfg``: any LightningDataModule class, given only its own keys.

    A class named instead of the chosen group's (``datamodule._target_=pkg.Class``) gets
    none of that group file's keys unless they are set again (see data/arguments.py);
    ``explicit`` defaults to the ``datamodule.*`` keys of the Hydra job's command line.
    """
    from litpredict.checkpoint.targets import load_class
    from litpredict.data.arguments import (
        datamodule_group_defaults,
        datamodule_keys,
        explicit_datamodule_keys,
    )

    check_targets(cfg.datamodule, "datamodule", "LightningDataModule")
    cls = load_class(cfg.datamodule._target_, "datamodule")
    explicit = explicit_datamodule_keys() if explicit is None else set(explicit)
    keys = datamodule_keys(cfg.datamodule, cls, explicit, datamodule_group_defaults())
    resolved = OmegaConf.to_container(cfg.datamodule, resolve=True)
    node = {"_target_": resolved["_target_"], **{k: resolved[k] for k in keys}}
    return instantiate(node, _convert_="all")
