"""``python -m litpredict.predict``: predictions from a checkpoint, written with a manifest.

compose (Hydra) -> build datamodule, model from checkpoint, writer, trainer
-> ``Trainer.predict`` -> merge shards, hash outputs -> manifest ``status: complete``.
A run stopped part way resumes: the same command again reuses what its earlier attempts
committed and predicts only the rest (``litpredict.writing.resume``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from litpredict.process import resolvers  # noqa: F401  (registers the resolvers conf/ uses)
from litpredict.process.argv import import_working_directory, quote_checkpoint_paths
from litpredict.process.config_dir import config_dir
from litpredict.process.errors import RunInterrupted, describe, first_line, user_error_in
from litpredict.process.job import Job
from litpredict.process.reporting import run_reporting_errors
from litpredict.process.signals import interrupts_held, interrupts_raise, stop_children

log = logging.getLogger(__name__)


def predict(cfg: DictConfig, job: Job) -> dict[str, Any]:
    """Predict into ``job.run_dir``, held locked; a run already complete there is returned."""
    from litpredict.rundir.ownership import locked_run_dir

    with locked_run_dir(job.run_dir):
        return _predict_locked(cfg, job)


def _predict_locked(cfg: DictConfig, job: Job) -> dict[str, Any]:
    from litpredict.checkpoint.from_run import model_unknown, no_model_error, with_training_run
    from litpredict.checkpoint.model import argument_sources, predicting_model
    from litpredict.checkpoint.reading import checkpoint_path, read_checkpoint, trained_model_target
    from litpredict.data.arguments import datamodule_record
    from litpredict.data.base import input_files_of
    from litpredict.data.build import build_datamodule
    from litpredict.data.splits import use_split
    from litpredict.process.ranks import is_global_zero
    from litpredict.rundir import provenance
    from litpredict.rundir.manifest import COMPLETE
    from litpredict.rundir.ownership import refuse_foreign, restore_hydra_files
    from litpredict.trainer import build
    from litpredict.writing import resume
    from litpredict.writing.shards import SHARDS

    ckpt_file = checkpoint_path(cfg.get("ckpt_path"))
    cfg = with_training_run(cfg, job.overrides)  # the checkpoint's run: its model, its data
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        if is_global_zero():
            refuse_foreign(job.run_dir)
        done, redo = _already_complete(job, ckpt_file, config)
    except BaseException:
        restore_hydra_files(job.run_dir)  # a run that does nothing leaves .hydra/ as it was
        raise
    if done is not None:
        restore_hydra_files(job.run_dir)
        return done
    # Rank 0 keeps what earlier attempts of this very run committed, or clears it (a failed
    # run's shards would fill the disk again); the other ranks learn which in the writer.
    attempt = resume.prepare(job.run_dir, config, ckpt_file) if is_global_zero() else None
    manifest = _started_manifest(cfg, job, ckpt_file, config, redo, attempt)
    record = resume.RunRecord(job.run_dir / SHARDS, enabled=manifest.enabled)
    completed = False
    try:
        with interrupts_raise():
            lightning = build.lightning(cfg)  # the model's package: Trainer, callbacks, seeding
            lightning.seed_everything(cfg.seed, verbose=False)
            datamodule = use_split(build_datamodule(cfg), cfg.get("split", "predict"))
            inputs = input_files_of(datamodule) if manifest.enabled else []
            data_hash = cfg.get("data_hash", provenance.DATA_HASH)
            fingerprint = provenance.BackgroundFingerprint(inputs, data_hash, record.set_data)
            checkpoint = read_checkpoint(ckpt_file)
            sha256 = attempt.checkpoint_sha256 if attempt else None
            manifest.update(checkpoint=_checkpoint_record(ckpt_file, checkpoint, sha256))
            if model_unknown(cfg, job.overrides, trained_model_target(checkpoint)):
                raise no_model_error(ckpt_file)
            explicit = job.explicit_keys("model")
            manifest.update(model_arguments=argument_sources(cfg, checkpoint, explicit))
            model = predicting_model(cfg, checkpoint, explicit)
            del checkpoint
            writer = build.writer(cfg, job.run_dir, lightning)
            writer.prepared = True  # by rank 0, here: the writer must not clear .shards
            trainer = build.trainer(cfg, callbacks=[writer], lightning=lightning)
            manifest.update(world_size=trainer.world_size)
            if attempt is not None:  # before any rank writes a shard (the writer's barrier)
                sha256 = manifest.data["checkpoint"]["sha256"]
                resume.start_record(record, attempt, config, sha256, trainer.world_size)
            resume.install_loader(datamodule, job.run_dir)  # the batches left, if resuming
            own_datamodule = lightning.datamodule(datamodule)  # wrapped if of the other package
            trainer.predict(model, datamodule=own_datamodule, return_predictions=False)
            # Workers launched by ddp_spawn have exited by now; ranks launched from outside
            # (srun, torchrun) wait here until every shard is closed.
            trainer.strategy.barrier("litpredict-predicted")
            if not is_global_zero():
                return {}
            data = fingerprint.result()
            # An interrupt waits until the outputs have their final names and the manifest
            # says complete: never final-named files of a run that is not complete.
            with interrupts_held():
                result = writer.finalize()
                result["resume"] = {**manifest.data.get("resume", {}), **result["resume"]}
                described = datamodule_record(datamodule, result["num_predictions"])
                manifest.finish(COMPLETE, data=data, datamodule=described, **result)
                completed = True
    except BaseException as error:
        if completed and isinstance(error, RunInterrupted):
            log.warning("interrupted (%s) once the run was complete", error.signal_name)
            return manifest.data
        stop_children()  # ddp_spawn workers commit what they wrote and stop
        _record_end(manifest, error)
        disk_full = None if user_error_in(error) else no_space_error(error, job.run_dir)
        if disk_full is not None:
            raise disk_full from error
        raise
    log.info("%d predictions -> %s", result["num_predictions"], job.run_dir)
    return manifest.data


def _already_complete(
    job: Job, ckpt_file, config: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """``(manifest, None)`` when this very run is complete in ``job.run_dir`` already.

    A complete run is never overwritten by another one (another checkpoint, config or
    data): an error in a single run; in a sweep ``(None, why)``, the job is redone (a
    sweep resumed after its data was regenerated must not keep stale predictions).
    """
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.manifest import is_complete, read_manifest
    from litpredict.rundir.ownership import RunDirError, differences

    if not is_complete(job.run_dir):
        return None, None
    manifest = read_manifest(job.run_dir)
    changes = differences(manifest, config, job.run_dir, sha256_file(ckpt_file))
    if not changes:
        log.info("%s is already complete (outputs verified); nothing to do", job.run_dir)
        return manifest, None
    why = "; ".join(changes)
    if job.multirun:
        log.warning("%s holds a complete run of %s: predicting again", job.run_dir, why)
        return None, why
    if changes[0] == "another checkpoint":
        why = why.replace(
            "another checkpoint", f"another checkpoint ({manifest['checkpoint']['path']})", 1
        )
    raise RunDirError(
        f"{job.run_dir} holds a complete run of {why}; a complete run is never overwritten",
        "predict into a new hydra.run.dir (or delete that directory to redo it)",
    )


def _record_end(manifest, error: BaseException) -> None:
    """The manifest says ``failed``/``interrupted`` where it can still be written."""
    from litpredict.process.reporting import requeued_by_launcher

    try:
        known = user_error_in(error) or no_space_error(error)
        line = _error_line(known or error)
        if requeued_by_launcher(error):
            line = "requeued by the scheduler (time limit or preemption): it resumes from here"
        manifest.finish(_end_status(error), error=line)
    except OSError as unwritable:
        log.error("could not record the run's end in the manifest: %s", unwritable)


def no_space_error(error: BaseException, run_dir=None):
    """A UserError for a full disk (or quota) behind ``error``, else None."""
    import errno

    from litpredict.process.errors import UserError

    cause: BaseException | None = error
    while cause is not None and not (
        isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
    ):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    where = f" under {run_dir}" if run_dir else ""
    return UserError(
        f"no space left on the device{where} ({cause.strerror}: {cause.filename or 'a file'})",
        "free space (or pass hydra.run.dir=DIR on another disk) and run the same command "
        "again: the failed run's leftovers are cleared when it starts",
    )


def _started_manifest(
    cfg: DictConfig,
    job: Job,
    ckpt_file,
    config: dict[str, Any],
    redo: str | None = None,
    attempt=None,
):
    """The run's manifest, written ``status: running`` with what is known before building.

    Only rank 0 writes it (the other processes of an externally launched DDP job hold a
    disabled one).
    """
    from litpredict.process.ranks import is_global_zero
    from litpredict.rundir import provenance
    from litpredict.rundir.manifest import Manifest

    manifest = Manifest(job.run_dir, enabled=is_global_zero())
    manifest.start(
        checkpoint={"path": str(ckpt_file.resolve())},
        config=config,
        overrides=job.overrides,
        seed=cfg.seed,
        git=provenance.git_state(),
        versions=provenance.versions(),
        **provenance.host(),
        **({"redone_because": redo} if redo else {}),
        **({"resume": attempt.manifest()} if attempt else {}),
    )
    return manifest


def _checkpoint_record(path, checkpoint: dict, sha256: str | None = None) -> dict[str, Any]:
    """The manifest's ``checkpoint``; ``sha256`` when already computed for this file."""
    from litpredict.checkpoint.reading import dropped_hyperparameters, is_compiled
    from litpredict.rundir.hashing import sha256_file

    dropped = dropped_hyperparameters(checkpoint)
    return {
        "path": str(path.resolve()),
        "sha256": sha256 or sha256_file(path),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        **({"dropped_hyperparameters": dropped} if dropped else {}),
        # weights saved from a torch.compile'd module, loaded without '_orig_mod.'
        **({"compiled": True} if is_compiled(checkpoint["state_dict"]) else {}),
    }


def _end_status(error: BaseException) -> str:
    """``interrupted`` for a signal or another BaseException, else ``failed``."""
    from litpredict.rundir.manifest import FAILED, INTERRUPTED

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
