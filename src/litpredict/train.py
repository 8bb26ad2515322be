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
from litpredict.process.collector import collector_paused, resume_collector
from litpredict.process.config_dir import config_dir
from litpredict.process.errors import describe, first_line, user_error_in
from litpredict.process.job import Job
from litpredict.process.reporting import run_reporting_errors
from litpredict.process.signals import interrupts_raise

log = logging.getLogger(__name__)


def train(cfg: DictConfig, job: Job) -> dict[str, float]:
    """Fit into ``job.run_dir``, held locked: two trainings never write one directory."""
    from litpredict.process.ranks import check_launch_environment
    from litpredict.rundir.lock import locked_run_dir

    check_launch_environment()  # a stray RANK would make this process write nothing
    with locked_run_dir(job.run_dir):
        return _train_locked(cfg, job)


def _train_locked(cfg: DictConfig, job: Job) -> dict[str, float]:
    """Fit the model with its own package's Trainer (``lightning`` or ``pytorch_lightning``).

    The run directory follows the ownership rule of every command that writes
    (:func:`~litpredict.rundir.ownership.check_output`): a user's folder or another
    command's run is refused, a complete training is never overwritten, and a failed or
    interrupted one is trained again from the start (its checkpoints and logs removed
    first: checkpoints of two trainings never mix in one folder). A manifest records the
    training (``kind: train``, status, config, git, versions) and the files it wrote.
    """
    from litpredict.checkpoint.model import training_model
    from litpredict.data.build import build_datamodule
    from litpredict.process.ranks import check_one_run_per_launch, is_global_zero
    from litpredict.rundir import provenance
    from litpredict.rundir.files import write_json
    from litpredict.rundir.manifest import COMPLETE, Manifest, end_status
    from litpredict.rundir.ownership import (
        TRAIN,
        check_output,
        clear_attempt,
        refuse_complete,
        written_files,
    )
    from litpredict.trainer import build

    rank_zero = is_global_zero()
    redo = None
    if rank_zero:
        earlier = check_output(job.run_dir, TRAIN, option="hydra.run.dir")
        refuse_complete(earlier, job.run_dir, option="hydra.run.dir")
        if earlier is not None:
            redo = earlier.get("status")
            removed = clear_attempt(job.run_dir, earlier)
            log.warning("training again after a %s one: removed %s", redo, ", ".join(removed))
    job.run_dir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    manifest = Manifest(job.run_dir, enabled=rank_zero)
    manifest.start(
        kind=TRAIN,
        config=config,
        overrides=job.overrides,
        seed=cfg.seed,
        git=provenance.git_state() if rank_zero else None,
        versions=provenance.versions(),
        **provenance.host(),
        **({"redone_after": redo} if redo else {}),
    )
    try:
        if rank_zero:
            write_json(job.run_dir / "config.json", config)
        with interrupts_raise():
            lightning = build.lightning(cfg)
            lightning.seed_everything(cfg.seed, workers=True, verbose=False)
            datamodule = build_datamodule(cfg)
            model = training_model(cfg, job.explicit_keys("model"))
            callbacks = build.training_callbacks(cfg, lightning)
            trainer = build.trainer(cfg, callbacks=callbacks, lightning=lightning)
            check_one_run_per_launch(trainer.world_size)
            resume_collector()  # start-up is over (process/collector.py)
            trainer.fit(model, datamodule=lightning.datamodule(datamodule))
    except BaseException as error:
        if manifest.enabled:
            try:
                manifest.finish(
                    end_status(error),
                    error=first_line(user_error_in(error) or describe(error)),
                    outputs=written_files(job.run_dir),
                )
            except OSError as unwritable:
                log.error("could not record the training's end in the manifest: %s", unwritable)
        raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    manifest.finish(COMPLETE, outputs=written_files(job.run_dir), metrics=metrics)
    log.info("checkpoints in %s; %s", job.run_dir / "checkpoints", _format(metrics))
    return metrics


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def run(cfg: DictConfig) -> dict[str, float]:
    job = Job.from_hydra()
    try:
        return run_reporting_errors(job, lambda: train(cfg, job))
    finally:
        resume_collector()  # if it ended before its loop: a sweep's next job starts collected


def main() -> None:
    """Console entry (``litpredict-train``), the same as ``python -m litpredict.train``."""
    import_working_directory()  # as under ``python -m``: user modules in the cwd import
    with collector_paused():  # until the loop begins: start-up allocates ~700k objects
        run()


if __name__ == "__main__":
    main()
