"""The Trainer side of a run, built from config in the model's own Lightning package.

The package is the one ``model._target_`` derives from; the Trainer, its callbacks and
the prediction writer are all built from it, so a ``lightning`` model never meets a
``pytorch_lightning`` Trainer or callback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litpredict.checkpoint.model import model_class
from litpredict.checkpoint.targets import check_targets
from litpredict.trainer.lightning_api import PYTORCH_LIGHTNING, LightningAPI, api, api_of


def lightning(cfg: DictConfig) -> LightningAPI:
    """The run's Lightning package: the one ``model._target_`` derives from.

    Every object below that goes to the Trainer (the Trainer too) is built from it, so a
    ``lightning`` model never meets a ``pytorch_lightning`` Trainer or callback.
    """
    target = cfg.get("model", {}).get("_target_")
    return api_of(model_class(target)) if target else api(PYTORCH_LIGHTNING)


def in_package(node: Any, lightning: LightningAPI) -> Any:
    """A copy of config ``node`` with every ``_target_`` in it as ``lightning`` spells it."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        return {
            k: lightning.target(v) if k == "_target_" else in_package(v, lightning)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [in_package(v, lightning) for v in node]
    return node


def trainer(cfg: DictConfig, callbacks: Sequence[Any] = (), lightning: LightningAPI | None = None):
    lightning = lightning or api(PYTORCH_LIGHTNING)
    if cfg.trainer.get("strategy") == "ddp_spawn" and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from litpredict.process.errors import UserError

        raise UserError(
            "trainer.strategy=ddp_spawn inside a SLURM job with several tasks would start "
            "devices x tasks processes",
            "on SLURM (srun starts one task per GPU) pass trainer.strategy=ddp",
        )
    from litpredict.process.console_callbacks import WorkerLogging
    from litpredict.process.ranks import DestroyProcessGroupAtExit, SharedRunDirCheck
    from litpredict.process.spawned_ranks import SigtermFlagInSpawnedRanks

    bar = _progress_bar(cfg, callbacks, lightning)
    mine = [
        DestroyProcessGroupAtExit,
        SharedRunDirCheck,
        SigtermFlagInSpawnedRanks,
        WorkerLogging,
        *bar,
    ]
    own = [lightning.counterpart(c)() for c in mine]
    check_targets(cfg.trainer, "trainer", "Trainer")
    return instantiate(
        in_package(cfg.trainer, lightning), callbacks=[*callbacks, *own], _convert_="all"
    )


def _progress_bar(cfg: DictConfig, callbacks: Sequence[Any], lightning: LightningAPI) -> list[type]:
    """litpredict's bar (drawn only on long predictions) where the config turns a bar on
    and no callback of the user's is a bar already."""
    from litpredict.process.console_callbacks import DelayedProgressBar

    if not cfg.trainer.get("enable_progress_bar"):
        return []
    if any(isinstance(c, lightning.callbacks.ProgressBar) for c in callbacks):
        return []
    return [DelayedProgressBar]


def writer(cfg: DictConfig, run_dir: Path, lightning: LightningAPI | None = None):
    check_targets(cfg.writer, "writer", "PredictionWriter")
    from litpredict.writing.metrics import checked_metric_names

    node = in_package(cfg.writer, lightning or api(PYTORCH_LIGHTNING))
    metrics = cfg.get("metrics")
    metrics = checked_metric_names(
        OmegaConf.to_object(metrics) if OmegaConf.is_config(metrics) else metrics
    )
    from litpredict.writing.resume import commit_settings

    resume = cfg.get("resume") or {}
    every_s, every_batches = commit_settings(
        resume.get("commit_every_s"), resume.get("commit_every_batches")
    )  # checked here: an error inside instantiate would reach the user wrapped in Hydra's
    return instantiate(
        node,
        output_dir=str(run_dir),
        metrics=metrics,
        commit_every_s=every_s,
        commit_every_batches=every_batches,
    )


def training_callbacks(cfg: DictConfig, lightning: LightningAPI | None = None) -> list[Any]:
    chosen = {k: c for k, c in (cfg.get("callbacks") or {}).items() if c is not None}
    for key, callback in chosen.items():
        check_targets(callback, f"callbacks.{key}", "Callback")
    lightning = lightning or api(PYTORCH_LIGHTNING)
    return [instantiate(in_package(c, lightning)) for c in chosen.values()]
