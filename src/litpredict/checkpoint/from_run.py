"""The predict config completed from the checkpoint's training run.

With no model chosen on the command line (no ``model=``, no ``experiment=``), the model is
the training run's (its config found beside the checkpoint); ``model._target_=pkg.Class``
names the class and still takes the other arguments from the run. The run's datamodule is
used with ``datamodule=from_run``, and when none is chosen. The command line's ``model.*``
and ``datamodule.*`` keys go on top; the checkpoint's saved hyperparameters still win over
the run's config when the model is built (:mod:`litpredict.checkpoint.arguments`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from litpredict.checkpoint.reading import CheckpointFile
from litpredict.checkpoint.training_run import (
    TrainingRun,
    candidates,
    find_remote_training_run,
    find_training_run,
    importable_project,
    main_targets,
    url_candidates,
    with_module,
)
from litpredict.process.errors import CheckpointError, DataError

log = logging.getLogger(__name__)
RUN_KEY = "training_run"  # the config's record of the run config used (None: none)
OTHER_DATA = (
    "datamodule=array_file datamodule.path=FILE, datamodule=image_folder datamodule.root=DIR, "
    "or datamodule._target_=pkg.YourDataModule"
)
CHOOSE_DATA = (
    "choose the data: datamodule=from_run (the run's own, with split=test|val|train), " + OTHER_DATA
)


def chosen(overrides: list[str]) -> set[str]:
    """Which of ``model``, ``model._target_``, ``datamodule``, ``experiment`` the command
    line chooses (a group choice, or a class by ``_target_``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = set()
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.lstrip("+~")
        if key in ("model", "datamodule", "experiment", "model._target_"):
            found.add(key)
        elif key == "datamodule._target_":
            found.add("datamodule")
    return found


def with_training_run(
    cfg: DictConfig, overrides: list[str], ckpt: CheckpointFile | None = None
) -> DictConfig:
    """``cfg`` with the model (and data) of the checkpoint's training run where it applies.

    ``cfg.training_run`` records the config file used (path, sha256, kind), or None; a
    config that has it already (a manifest's, re-run by ``reproduce``) is left as it is.
    ``ckpt``: the checkpoint ``cfg.ckpt_path`` names, if the caller has it already. For a
    URL the run's config is looked for beside the object (``<prefix>/.hydra/config.yaml``).
    """
    if RUN_KEY in cfg:
        return cfg
    picked = chosen(overrides)
    data_node = cfg.get("datamodule")
    from_run_data = data_node is not None and bool(data_node.get("from_run"))
    model_chosen = bool(picked & {"model", "experiment"})
    data_chosen = bool(picked & {"datamodule", "experiment"}) and not from_run_data
    with open_dict(cfg):
        cfg[RUN_KEY] = None
    if model_chosen and not from_run_data:
        _require_data(cfg)
        return cfg
    from litpredict.checkpoint.reading import checkpoint_file

    ckpt = ckpt or checkpoint_file(cfg.get("ckpt_path"))
    remote = bool(ckpt.remote)
    run = find_remote_training_run(ckpt.source) if remote else find_training_run(ckpt.path)
    if run is None:
        if from_run_data:
            raise DataError(
                f"datamodule=from_run, but no training run config was found beside "
                f"{ckpt.source} (looked for {_looked_for(ckpt)})",
                f"keep the checkpoint inside its run directory, or {CHOOSE_DATA}",
            )
        _require_data(cfg)
        return cfg
    importable_project(run)
    used = []
    if not model_chosen:
        _use_run_model(cfg, run, overrides, "model._target_" in picked)
        used.append("model")
    if from_run_data or not data_chosen:
        _use_run_data(cfg, run, overrides)
        used.append("data")
    with open_dict(cfg):
        cfg[RUN_KEY] = run.record()
    log.info("%s from the training run's config %s", " and ".join(used), run.shown)
    return cfg


def model_unknown(cfg: DictConfig, overrides: list[str], trained_target: str | None) -> bool:
    """Nothing names the model: no choice on the command line, no training run config, and
    the checkpoint holds no class of its own (litpredict.train records one)."""
    named = chosen(overrides) & {"model", "experiment", "model._target_"}
    return not named and cfg.get(RUN_KEY) is None and trained_target is None


def no_model_error(ckpt: CheckpointFile | Path) -> CheckpointError:
    """What :func:`model_unknown` reports: what was looked for and what to type."""
    if isinstance(ckpt, Path):
        ckpt = CheckpointFile(ckpt, str(ckpt))
    return CheckpointError(
        f"no model chosen, and no training run config was found beside {ckpt.source} "
        f"(looked for {_looked_for(ckpt)})",
        "choose the model: model=linear|cnn|lstm, experiment=..., or "
        "model._target_=pkg.module.YourModule (with ++model.KEY=VALUE for its arguments)",
    )


def _looked_for(ckpt: CheckpointFile) -> str:
    found = url_candidates(ckpt.source) if ckpt.remote else candidates(ckpt.path)
    shown = [str(p) for p in found[:4]]
    return ", ".join(shown) + ", ..."


def _require_data(cfg: DictConfig) -> None:
    if cfg.get("datamodule") is None:
        raise DataError("no datamodule is chosen for this model", CHOOSE_DATA)


def _use_run_model(cfg: DictConfig, run: TrainingRun, overrides: list[str], named: bool) -> None:
    model = dict(run.model)
    target = str(cfg.model.get("_target_")) if named else model.get("_target_")
    if not target:
        raise CheckpointError(
            f"the training run's config {run.shown} names no model class (LightningCLI "
            "writes a single model class's arguments without it)",
            "name it: model._target_=pkg.module.YourModule",
        )
    if named:
        model = with_module(model, target.rpartition(".")[0])
        model["_target_"] = target
    mains = main_targets(model)
    if mains:
        raise CheckpointError(
            f"the training run's config {run.shown} names {mains[0]}: the training "
            "script ran as a script, so its classes are recorded as __main__",
            "name the model class by the module the script imports as: "
            f"model._target_=your_module.{mains[0].rpartition('.')[2]} (its other __main__ "
            "classes are then read from that module)",
        )
    cfg.model = _with_command_line(model, cfg.model, overrides, "model")


def _use_run_data(cfg: DictConfig, run: TrainingRun, overrides: list[str]) -> None:
    if run.data is None:
        raise DataError(
            f"the training run's config {run.shown} names no datamodule",
            f"choose the data: {OTHER_DATA}",
        )
    if "unresolved" in run.data:
        raise DataError(
            f"the training run's datamodule config ({run.shown}) does not resolve here: "
            f"{run.data['unresolved']}",
            f"set the variable it names, or choose the data: {OTHER_DATA}",
        )
    data = with_module(run.data, str(cfg.model._target_).rpartition(".")[0])
    with open_dict(cfg):
        cfg.datamodule = _with_command_line(data, cfg.get("datamodule"), overrides, "datamodule")


def _with_command_line(
    node: dict[str, Any], composed: DictConfig | None, overrides: list[str], prefix: str
) -> DictConfig:
    """``node`` with the values of the command line's ``<prefix>.*`` keys from ``composed``."""
    from litpredict.process.job import Job

    result = OmegaConf.create(node)
    if composed is None:
        return result
    keys = Job(run_dir=Path("."), overrides=overrides).explicit_keys(prefix)
    for key in sorted(keys - {"_target_", "from_run"}):
        OmegaConf.update(result, key, OmegaConf.select(composed, key), force_add=True)
    return result
