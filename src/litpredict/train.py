"""``python -m litpredict.train``: checkpoints from the same config groups as predict.

compose -> build datamodule, model, callbacks, trainer -> ``Trainer.fit`` ->
``<run dir>/checkpoints/epoch=E-step=S.ckpt`` per epoch plus ``last.ckpt``.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback

from litpredict import resolvers  # noqa: F401  (registers the resolvers conf/ uses)
from litpredict.config_dir import config_dir
from litpredict.job import Job
from litpredict.reporting import run_reporting_errors
from litpredict.signals import interrupts_raise

log = logging.getLogger(__name__)


class RecordModelTarget(Callback):
    """Stores the model's class path in each checkpoint, so predict can check it."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        from litpredict.checkpoints import record_model_target

        record_model_target(checkpoint, pl_module)


def train(cfg: DictConfig, job: Job) -> dict[str, float]:
    import pytorch_lightning as pl

    from litpredict import build
    from litpredict.files import write_json

    job.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(job.run_dir / "config.json", OmegaConf.to_container(cfg, resolve=True))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    with interrupts_raise():
        datamodule = build.datamodule(cfg)
        model = build.training_model(cfg)
        trainer = build.trainer(cfg, callbacks=build.training_callbacks(cfg))
        trainer.fit(model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("checkpoints in %s; %s", job.run_dir / "checkpoints", _format(metrics))
    return metrics


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> dict[str, float]:
    job = Job.from_hydra()
    return run_reporting_errors(job, lambda: train(cfg, job))


if __name__ == "__main__":
    main()
