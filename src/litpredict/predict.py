"""``python -m litpredict.predict``: predictions from a checkpoint, written with a manifest.

compose (Hydra) -> build datamodule, model from checkpoint, writer, trainer
-> ``Trainer.predict`` -> merge shards, hash outputs -> manifest ``status: complete``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from litpredict import resolvers  # noqa: F401  (registers the resolvers conf/ uses)
from litpredict.cli import import_working_directory, quote_checkpoint_paths
from litpredict.config_dir import config_dir
from litpredict.errors import RunInterrupted, describe, first_line, user_error_in
from litpredict.job import Job
from litpredict.reporting import run_reporting_errors
from litpredict.signals import interrupts_raise

log = logging.getLogger(__name__)


def predict(cfg: DictConfig, job: Job) -> dict[str, Any]:
    from litpredict import build, provenance
    from litpredict.checkpoints import checkpoint_path, read_checkpoint
    from litpredict.data.base import input_files_of
    from litpredict.distributed import is_global_zero
    from litpredict.manifest import COMPLETE, is_complete

    ckpt_file = checkpoint_path(cfg.get("ckpt_path"))
    if is_complete(job.run_dir):
        return _already_complete(job, ckpt_file)
    manifest = _started_manifest(cfg, job, ckpt_file)
    try:
        with interrupts_raise():
            lightning = build.lightning(cfg)  # the model's package: Trainer, callbacks, seeding
            lightning.seed_everything(cfg.seed, verbose=False)
            datamodule = build.datamodule(cfg)
            inputs = input_files_of(datamodule) if manifest.enabled else []
            data_hash = cfg.get("data_hash", provenance.DATA_HASH)
            fingerprint = provenance.BackgroundFingerprint(inputs, data_hash)
            checkpoint = read_checkpoint(ckpt_file)
            manifest.update(checkpoint=_checkpoint_record(ckpt_file, checkpoint))
            model = build.predicting_model(cfg, checkpoint, job.explicit_keys("model"))
            del checkpoint
            writer = build.writer(cfg, job.run_dir, lightning)
            trainer = build.trainer(cfg, callbacks=[writer], lightning=lightning)
            manifest.update(world_size=trainer.world_size)
            # The writer clears old shards itself (rank 0, in setup) before any rank writes.
            own_datamodule = lightning.datamodule(datamodule)  # wrapped if of the other package
            trainer.predict(model, datamodule=own_datamodule, return_predictions=False)
            # Workers launched by ddp_spawn have exited by now; ranks launched from outside
            # (srun, torchrun) wait here until every shard is closed.
            trainer.strategy.barrier("litpredict-predicted")
            if not is_global_zero():
                return {}
            result = writer.finalize()
            data = fingerprint.result()
    except BaseException as error:
        manifest.finish(_end_status(error), error=_error_line(error))
        raise
    manifest.finish(COMPLETE, data=data, **result)
    log.info("%d predictions -> %s", result["num_predictions"], job.run_dir)
    return manifest.data


def _already_complete(job: Job, ckpt_file) -> dict[str, Any]:
    """A complete run is never overwritten: not even by a different checkpoint."""
    from litpredict.errors import UserError
    from litpredict.hashing import sha256_file
    from litpredict.manifest import read_manifest

    manifest = read_manifest(job.run_dir)
    if manifest["checkpoint"].get("sha256") != sha256_file(ckpt_file):
        raise UserError(
            f"{job.run_dir} holds a complete run of another checkpoint "
            f"({manifest['checkpoint']['path']}); a complete run is never overwritten",
            "predict into a new hydra.run.dir (or delete that directory to redo it)",
        )
    log.info("%s is already complete (outputs verified); nothing to do", job.run_dir)
    return manifest


def _started_manifest(cfg: DictConfig, job: Job, ckpt_file):
    """The run's manifest, written ``status: running`` with what is known before building.

    Only rank 0 writes it (the other processes of an externally launched DDP job hold a
    disabled one).
    """
    from litpredict import provenance
    from litpredict.distributed import is_global_zero
    from litpredict.manifest import Manifest

    manifest = Manifest(job.run_dir, enabled=is_global_zero())
    manifest.start(
        checkpoint={"path": str(ckpt_file.resolve())},
        config=OmegaConf.to_container(cfg, resolve=True),
        overrides=job.overrides,
        seed=cfg.seed,
        git=provenance.git_state(),
        versions=provenance.versions(),
        **provenance.host(),
    )
    return manifest


def _checkpoint_record(path, checkpoint: dict) -> dict[str, Any]:
    from litpredict.checkpoints import dropped_hyperparameters
    from litpredict.hashing import sha256_file

    dropped = dropped_hyperparameters(checkpoint)
    return {
        "path": str(path.resolve()),
        "sha256": sha256_file(path),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        **({"dropped_hyperparameters": dropped} if dropped else {}),
    }


def _end_status(error: BaseException) -> str:
    """``interrupted`` for a signal or another BaseException, else ``failed``."""
    from litpredict.manifest import FAILED, INTERRUPTED

    interrupted = isinstance(error, RunInterrupted) or not isinstance(error, Exception)
    return INTERRUPTED if interrupted else FAILED


def _error_line(error: BaseException) -> str:
    """The manifest's ``error``: the problem of a UserError (a DDP worker's too), else its name."""
    return first_line(user_error_in(error) or describe(error))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def run(cfg: DictConfig) -> dict[str, Any]:
    job = Job.from_hydra()
    return run_reporting_errors(job, lambda: predict(cfg, job))


def main() -> None:
    """Console entry: ``ckpt_path=runs/epoch=3-step=100.ckpt`` works without quoting."""
    import_working_directory()  # as under ``python -m``: user modules in the cwd import
    sys.argv = quote_checkpoint_paths(sys.argv)
    run()


if __name__ == "__main__":
    main()
