"""Every object litpredict builds from config is built here, in one place."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def datamodule(cfg: DictConfig):
    return instantiate(cfg.datamodule, _convert_="all")


def trainer(cfg: DictConfig, callbacks: Sequence[Any] = ()):
    if cfg.trainer.get("strategy") == "ddp_spawn" and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from litpredict.errors import UserError

        raise UserError(
            "trainer.strategy=ddp_spawn inside a SLURM job with several tasks would start "
            "devices x tasks processes",
            "on SLURM (srun starts one task per GPU) pass trainer.strategy=ddp",
        )
    from litpredict.distributed import DestroyProcessGroupAtExit

    callbacks = [*callbacks, DestroyProcessGroupAtExit()]
    return instantiate(cfg.trainer, callbacks=callbacks, _convert_="all")


def writer(cfg: DictConfig, run_dir: Path):
    return instantiate(cfg.writer, output_dir=str(run_dir))


def training_callbacks(cfg: DictConfig) -> list[Any]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def training_model(cfg: DictConfig):
    """A fresh model from config (for train.py); refuses anything but a LightningModule."""
    from litpredict.checkpoints import model_class

    model_class(cfg.model._target_)
    return instantiate(cfg.model, _convert_="all")


def predicting_model(cfg: DictConfig, checkpoint: Mapping[str, Any], explicit: Iterable[str]):
    """The model for ``checkpoint``: class from config, weights and hparams from the checkpoint.

    ``compile`` (off by default) wraps it in ``torch.compile``: compiling costs seconds to
    minutes up front, so it pays only on long runs; ``true`` or a mode such as
    ``max-autotune``. Lightning unwraps the compiled module and predicts with it.
    """
    from litpredict.checkpoints import build_model

    model = build_model(cfg.model, checkpoint, explicit)
    return compiled(model, cfg.get("compile", False))


def compiled(model: Any, mode: bool | str | None) -> Any:
    """``model`` compiled with ``torch.compile`` (``mode`` true or a mode name), else as is."""
    if not mode:
        return model
    import torch

    return torch.compile(model) if mode is True else torch.compile(model, mode=str(mode))
