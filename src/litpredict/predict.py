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
from litpredict.process.collector import collector_paused, resume_collector
from litpredict.process.config_dir import config_dir
from litpredict.process.errors import RunInterrupted, describe, first_line, user_error_in
from litpredict.process.job import Job
from litpredict.process.reporting import run_reporting_errors
from litpredict.process.signals import interrupts_held, interrupts_raise, stop_children

log = logging.getLogger(__name__)


def predict(cfg: DictConfig, job: Job) -> dict[str, Any]:
    """Predict into ``job.run_dir``, held locked; a run already complete there is returned.

    With ``upload_to``, a complete run is then uploaded (or its unfinished upload finished).
    """
    from litpredict.process.ranks import check_launch_environment, is_global_zero
    from litpredict.rundir.lock import locked_run_dir
    from litpredict.rundir.manifest import COMPLETE

    check_launch_environment()  # a stray RANK would make this process write nothing
    with locked_run_dir(job.run_dir):
        result = _predict_locked(cfg, job)
        upload_to = cfg.get("upload_to")
        if upload_to and is_global_zero() and result.get("status") == COMPLETE:
            from litpredict.remote.upload import target_of, upload_run

            result = upload_run(job.run_dir, target_of(upload_to, job.run_dir, job.multirun))
        return result


def _predict_locked(cfg: DictConfig, job: Job) -> dict[str, Any]:
    from litpredict.checkpoint.from_run import model_unknown, no_model_error, with_training_run
    from litpredict.checkpoint.model import argument_sources, predicting_model
    from litpredict.checkpoint.reading import checkpoint_file, read_checkpoint, trained_model_target
    from litpredict.data.arguments import datamodule_record
    from litpredict.data.base import input_files_of
    from litpredict.data.build import build_datamodule
    from litpredict.data.splits import use_split
    from litpredict.process.console import result_line
    from litpredict.process.console_callbacks import what_runs
    from litpredict.process.ranks import check_one_run_per_launch, is_global_zero
    from litpredict.remote.fingerprint import cached_entry
    from litpredict.remote.urls import refuse_credentials
    from litpredict.rundir import provenance
    from litpredict.rundir.manifest import COMPLETE
    from litpredict.rundir.ownership import PREDICT, check_output, restore_hydra_files
    from litpredict.trainer import build
    from litpredict.writing import resume
    from litpredict.writing.resumed_loader import install_loader
    from litpredict.writing.shard_layout import SHARDS

    ckpt = checkpoint_file(cfg.get("ckpt_path"))  # a URL: the cache's copy, verified
    ckpt_file = ckpt.path
    cfg = with_training_run(cfg, job.overrides, ckpt)  # the checkpoint's run: model, data
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        refuse_credentials(config, job.overrides)  # the config goes into the manifest
        if is_global_zero():  # a user's folder, another command's run: refused
            check_output(job.run_dir, PREDICT, option="hydra.run.dir")
        done, redo = _already_complete(job, ckpt_file, config)
    except BaseException:
        restore_hydra_files(job.run_dir)  # a run that does nothing leaves .hydra/ as it was
        raise
    if done is not None:
        restore_hydra_files(job.run_dir)
        return done
    # Rank 0 keeps what earlier attempts of this very run committed, or clears it (a failed
    # run's shards would fill the disk again); the other ranks learn which in the writer.
    attempt = (
        resume.prepare(job.run_dir, config, ckpt_file, cached_entry) if is_global_zero() else None
    )
    manifest = _started_manifest(cfg, job, ckpt.source, config, redo, attempt)
    record = resume.RunRecord(job.run_dir / SHARDS, enabled=manifest.enabled)
    completed = False
    try:
        with interrupts_raise():
            lightning = build.lightning(cfg)  # the model's package: Trainer, callbacks, seeding
            lightning.seed_everything(cfg.seed, verbose=False)
            datamodule = use_split(build_datamodule(cfg), cfg.get("split", "predict"))
            inputs = input_files_of(datamodule) if manifest.enabled else []
            data_hash = cfg.get("data_hash", provenance.DATA_HASH)
            fingerprint = provenance.BackgroundFingerprint(
                inputs, data_hash, cached_entry, on_done=record.set_data
            )
            checkpoint = read_checkpoint(ckpt_file, ckpt.source)
            sha256 = attempt.checkpoint_sha256 if attempt else None
            manifest.update(checkpoint=_checkpoint_record(ckpt, checkpoint, sha256))
            if model_unknown(cfg, job.overrides, trained_model_target(checkpoint)):
                raise no_model_error(ckpt)
            explicit = job.explicit_keys("model")
            manifest.update(model_arguments=argument_sources(cfg, checkpoint, explicit))
            model = predicting_model(cfg, checkpoint, explicit)
            del checkpoint
            writer = build.writer(cfg, job.run_dir, lightning)
            writer.prepared = True  # by rank 0, here: the writer must not clear .shards
            announce = what_runs(lightning, cfg.ckpt_path, datamodule)  # the console's first line
            trainer = build.trainer(cfg, callbacks=[writer, announce], lightning=lightning)
            manifest.update(world_size=trainer.world_size)
            check_one_run_per_launch(trainer.world_size)  # torchrun without a DDP strategy
            if attempt is not None:  # before any rank writes a shard (the writer's barrier)
                sha256 = manifest.data["checkpoint"]["sha256"]
                resume.start_record(record, attempt, config, sha256, trainer.world_size)
            install_loader(datamodule, job.run_dir)  # the batches left, if resuming
            own_datamodule = lightning.datamodule(datamodule)  # wrapped if of the other package
            resume_collector()  # start-up is over (process/collector.py)
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
                # What the dataset said of how it was read (decode_check): new fields only.
                known = {*manifest.data, *result}
                read = {k: v for k, v in result.pop("run_record").items() if k not in known}
                manifest.finish(COMPLETE, data=data, datamodule=described, **read, **result)
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
    log.info("%s", result_line(manifest.data, job.run_dir))
    return manifest.data


def _already_complete(
    job: Job, ckpt_file, config: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """``(manifest, None)`` when this very run is complete in ``job.run_dir`` already.

    A complete run is never overwritten by another one (another checkpoint, config or
    data): an error in a single run; in a sweep ``(None, why)``, the job is redone (a
    sweep resumed after its data was regenerated must not keep stale predictions).
    """
    from litpredict.process.errors import RunDirError
    from litpredict.remote.fingerprint import cached_entry
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.manifest import is_complete, read_manifest
    from litpredict.rundir.same_run import differences

    if not is_complete(job.run_dir):
        return None, None
    manifest = read_manifest(job.run_dir)
    changes = differences(manifest, config, job.run_dir, sha256_file(ckpt_file), cached_entry)
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
    from litpredict.rundir.manifest import end_status

    try:
        known = user_error_in(error) or no_space_error(error)
        line = _error_line(known or error)
        if requeued_by_launcher(error):
            line = "requeued by the scheduler (time limit or preemption): it resumes from here"
        manifest.finish(end_status(error), error=line)
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
    ckpt_source: str,
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
        kind="predict",
        checkpoint={"path": ckpt_source},
        config=config,
        overrides=job.overrides,
        seed=cfg.seed,
        stages=None,  # where the time went, once complete (writing/stages.py)
        git=provenance.git_state(),
        versions=provenance.versions(),
        **provenance.host(),
        **({"redone_because": redo} if redo else {}),
        **({"resume": attempt.manifest()} if attempt else {}),
    )
    return manifest


def _checkpoint_record(ckpt, checkpoint: dict, sha256: str | None = None) -> dict[str, Any]:
    """``checkpoint`` in the manifest: the path or URL as typed, SHA-256 (``sha256`` when
    already computed for this file), ETag/version."""
    from litpredict.checkpoint.reading import dropped_hyperparameters, is_compiled
    from litpredict.rundir.hashing import sha256_file

    dropped = dropped_hyperparameters(checkpoint)
    remote = {k: v for k, v in ckpt.remote.items() if k in ("etag", "version")}
    return {
        "path": ckpt.source,
        "sha256": ckpt.remote.get("sha256") or sha256 or sha256_file(ckpt.path),
        **remote,
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        **({"dropped_hyperparameters": dropped} if dropped else {}),
        # weights saved from a torch.compile'd module, loaded without '_orig_mod.'
        **({"compiled": True} if is_compiled(checkpoint["state_dict"]) else {}),
    }


def _error_line(error: BaseException) -> str:
    """The manifest's ``error``: the problem of a UserError (a DDP worker's too), else its name."""
    return first_line(user_error_in(error) or describe(error))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="predict")
def run(cfg: DictConfig) -> dict[str, Any]:
    job = Job.from_hydra()
    try:
        return run_reporting_errors(job, lambda: predict(cfg, job))
    finally:
        resume_collector()  # if it ended before its loop: a sweep's next job starts collected


def main() -> None:
    """Console entry: ``ckpt_path=runs/epoch=3-step=100.ckpt`` works without quoting."""
    import_working_directory()  # as under ``python -m``: user modules in the cwd import
    sys.argv = quote_checkpoint_paths(sys.argv)
    with collector_paused():  # until the loop begins: start-up allocates ~700k objects
        run()


if __name__ == "__main__":
    main()
