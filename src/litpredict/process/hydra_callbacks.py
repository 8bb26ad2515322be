"""Hydra callbacks (``conf/hydra/default.yaml``): what a run needs before its job starts.

:class:`CheckOutputDir` fails early, with a message, when the output directory cannot be
written. :class:`PlainStartMethod` undoes a launcher's foreign multiprocessing start method:
hydra-joblib-launcher runs jobs in loky workers, whose start method is ``"loky"``, a context
only loky's own executor knows. Processes a job starts from there fail: DataLoader workers
(``'Process' object has no attribute 'env'``) and the ranks of ``ddp_spawn`` (``cannot find
context for 'loky'``). :class:`SweepSummary` rebuilds a sweep's summary as each of its
jobs ends. :class:`NoCredentials` refuses a credential on the command line or in the config.
"""

from __future__ import annotations

import logging
import multiprocessing
import secrets
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from litpredict.process.reporting import EXIT_USAGE

log = logging.getLogger(__name__)

FOREIGN_METHODS = {"loky"}


class LaunchCheck(Callback):
    """Stops a run or sweep whose rank variables contradict each other, before anything is
    written (:func:`litpredict.process.ranks.check_launch_environment`): a stray ``RANK=1``
    would make every part of the run leave writing to a rank 0 that does not exist."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_launch()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_launch()


def _check_launch() -> None:
    from litpredict.process.ranks import LaunchError, check_launch_environment

    try:
        check_launch_environment()
    except LaunchError as error:
        print(f"litpredict: error: {error.message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


class CheckOutputDir(Callback):
    """Fails early, with a message, when the run or sweep directory cannot be written.

    Hydra creates it before litpredict's code runs and would show a traceback.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable(config.hydra.sweep.dir, "hydra.sweep.dir")


class NoCredentials(Callback):
    """Refuses a command line or config holding a credential (a URL with ``user:password@``,
    a secret-named key), before Hydra writes ``.hydra/`` or a log: the config reaches the
    manifest, the log and ``.hydra/``. Credentials come from the environment instead."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_credentials(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _refuse_credentials(config)


def _refuse_credentials(config: DictConfig) -> None:
    from omegaconf import OmegaConf

    from litpredict.process.errors import UserError
    from litpredict.remote.urls import refuse_credentials

    overrides = list(config.hydra.overrides.task) + list(config.hydra.overrides.hydra)
    # A sweep's config may still hold ``ckpt_path: ???`` (each job sets it): read as it is.
    task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    try:
        plain = OmegaConf.to_container(task, resolve=True, throw_on_missing=False)
    except Exception:  # resolved later, where its error is reported
        plain = OmegaConf.to_container(task, resolve=False)
    try:
        refuse_credentials(plain, overrides)
    except UserError as error:
        print(f"litpredict: error: {error.message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


class RunDirCheck(Callback):
    """Before Hydra writes ``.hydra/`` into the run directory (single runs): refuse a folder
    the command may not write (:func:`~litpredict.rundir.ownership.check_output`: a user's
    files, another command's run, a complete training), lock it (a second run, predicting
    or training, stops here, naming the first), and, for predictions, keep ``.hydra/``'s
    files so a run that does nothing can put them back.

    ``on_job_start`` would be too late: Hydra's ``run_job`` saves ``.hydra/`` before it
    calls job callbacks. Sweep jobs are checked and locked by ``predict``/``train`` itself.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from litpredict.process.ranks import is_global_zero

        if not is_global_zero():
            return  # the other tasks of a multi-task (srun) job
        from litpredict.process.errors import RunDirError
        from litpredict.rundir.lock import RunLock
        from litpredict.rundir.ownership import (
            PREDICT,
            TRAIN,
            check_output,
            refuse_complete,
            remember_hydra_files,
        )

        predicting = "ckpt_path" in config
        run_dir = Path(str(config.hydra.run.dir)).absolute()
        try:
            earlier = check_output(run_dir, PREDICT if predicting else TRAIN, option=RUN_DIR)
            if not predicting:
                refuse_complete(earlier, run_dir, option=RUN_DIR)
            RunLock.acquire(run_dir)
        except RunDirError as error:
            print(f"litpredict: error: {error.message}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        if predicting:
            remember_hydra_files(run_dir)


RUN_DIR = "hydra.run.dir"


def _writable(directory: str, key: str) -> None:
    """Create ``directory`` and a file in it, then remove what was created."""
    path = Path(str(directory)).absolute()
    created = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        # one name per process: the ranks of one launch probe the same directory at once
        probe = path / f".litpredict-write-test-{secrets.token_hex(4)}.tmp"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        print(
            f"litpredict: error: the output directory {str(path)!r} cannot be written "
            f"({err.strerror})\n  fix: pass {key}=DIR of a writable place "
            "(or set LITPREDICT_OUTPUTS)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE) from None
    from litpredict.process.resolvers import multi_rank_launch

    if multi_rank_launch():  # the other ranks of the launch may be creating it right now
        return
    for folder in created:  # Hydra makes them again when a job starts
        folder.rmdir()


def restore_start_method() -> str | None:
    """Reset a launcher's foreign start method to the platform default; return the one replaced."""
    current = multiprocessing.get_start_method(allow_none=True)
    if current not in FOREIGN_METHODS:
        return None
    default = multiprocessing.get_all_start_methods()[0]  # fork on Linux, spawn on macOS
    multiprocessing.set_start_method(default, force=True)
    log.debug("multiprocessing start method %r -> %r for this job", current, default)
    return current


class PlainStartMethod(Callback):
    """Runs :func:`restore_start_method` at the start of every job (a no-op outside loky)."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        restore_start_method()


class SweepSummary(Callback):
    """Puts each prediction job's row into the sweep summary as it ends, and prints one line.

    In the job's own process, because Hydra skips ``on_multirun_end`` once any job fails.
    A job reads only its own files (``litpredict.sweep.update``); the sweep's end rebuilds
    everything from the files, as ``litpredict-summary SWEEP_DIR`` does.
    """

    @staticmethod
    def _applies(config: Any) -> bool:
        from litpredict.process.job import is_multirun

        if not is_multirun(config.hydra) or "ckpt_path" not in config:
            return False  # single runs and training sweeps have nothing to summarise
        from litpredict.process.ranks import is_global_zero

        return is_global_zero()  # one task of a multi-task (srun) job: rank 0 writes

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from litpredict.sweep.console import quiet_job_console
        from litpredict.sweep.summary import clear_job_error

        if self._applies(config):
            quiet_job_console()
            clear_job_error(config.hydra.runtime.output_dir)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        from litpredict.process.errors import first_line
        from litpredict.sweep.console import job_line
        from litpredict.sweep.summary import clear_job_error, write_job_error
        from litpredict.sweep.update import update_summary

        if not self._applies(config):
            return
        hydra = config.hydra
        job_dir = Path(hydra.runtime.output_dir)
        if job_return.status == JobStatus.FAILED:
            write_job_error(job_dir, first_line(job_return._return_value))
        else:
            clear_job_error(job_dir)
        try:
            row, progress = update_summary(hydra.sweep.dir, job_dir)
        except Exception as error:  # a summary problem must not fail a finished job
            print(f"litpredict: could not write the sweep summary: {error}", file=sys.stderr)
            return
        line = job_line(row, progress.line())
        log.debug("%s", line)
        print(line, flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from litpredict.sweep.plan import predicts
        from litpredict.sweep.summary import write_summary

        if predicts(config) and Path(config.hydra.sweep.dir).is_dir():
            write_summary(config.hydra.sweep.dir)
