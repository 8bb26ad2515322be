"""``python -m litpredict.train``: checkpoints from the same config groups as predict.

compose -> build datamodule, model, callbacks, trainer -> ``Trainer.fit`` ->
``<run dir>/checkpoints/epoch=E-step=S.ckpt`` per epoch plus ``last.ckpt``.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from litpredict.process import resolvers  # noqa: F401  (registers the resolvers conf/ uses)
from litpredict.process.argv import import_working_directory
from litpredict.process.config_dir import config_dir
from litpredict.process.job import Job
from litpredict.process.reporting import run_reporting_errors
from litpredict.process.signals import interrupts_raise

log = logging.getLogger(__name__)


def train(cfg: DictConfig, job: Job) -> dict[str, float]:
    """Fit into ``job.run_dir``, held locked: two trainings never write one directory."""
    from litpredict.rundir.ownership import locked_run_dir

    with locked_run_dir(job.run_dir):
        return _train_locked(cfg, job)


def _train_locked(cfg: DictConfig, job: Job) -> dict[str, float]:
    """Fit the model with its own package's Trainer (``lightning`` or ``pytorch_lightning``)."""
    from litpredict.checkpoint.model import training_model
    from litpredict.data.build import build_datamodule
    from litpredict.rundir.files import write_json
    from litpredict.trainer import build

    job.run_dir.mkdir(parents=True, exist_ok=True)
    write_json(job.run_dir / "config.json", OmegaConf.to_container(cfg, resolve=True))
    with interrupts_raise():
        lightning = build.lightning(cfg)
        lightning.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = build_datamodule(cfg)
        model = training_model(cfg, job.explicit_keys("model"))
        callbacks = build.training_callbacks(cfg, lightning)
        trainer = build.trainer(cfg, callbacks=callbacks, lightning=lightning)
        trainer.fit(model, datamodule=lightning.datamodule(datamodule))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    log.info("checkpoints in %s; %s", job.run_dir / "checkpoints", _format(metrics))
    return metrics


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def run(cfg: DictConfig) -> dict[str, float]:
    job = Job.from_hydra()
    return run_reporting_errors(job, lambda: train(cfg, job))


def main() -> None:
    """Console entry (``litpredict-train``), the same as ``python -m litpredict.train``."""
    import_working_directory()  # as under ``python -m``: user modules in the cwd import
    run()


if __name__ == "__main__":
    main()
