"""Transitional home of the ``SweepSummary`` Hydra callback (moving to hydra_callbacks.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from litpredict.errors import first_line


class SweepSummary(Callback):
    """Rebuilds the sweep summary after every prediction job, in the job's own process.

    In the job's process because Hydra skips ``on_multirun_end`` once any job fails.
    """

    @staticmethod
    def _applies(config: Any) -> bool:
        hydra = config.hydra
        if getattr(hydra.mode, "name", str(hydra.mode)) != "MULTIRUN" or "ckpt_path" not in config:
            return False  # single runs and training sweeps have nothing to summarise
        # one task of a multi-task (srun) job: rank 0 writes
        return all(os.environ.get(v, "0") == "0" for v in ("RANK", "SLURM_PROCID"))

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from litpredict.sweep.summary import clear_job_error

        if self._applies(config):
            clear_job_error(config.hydra.runtime.output_dir)

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        from litpredict.sweep.summary import clear_job_error, write_job_error, write_summary

        if not self._applies(config):
            return
        hydra = config.hydra
        if job_return.status == JobStatus.FAILED:
            write_job_error(hydra.runtime.output_dir, first_line(job_return._return_value))
        else:
            clear_job_error(hydra.runtime.output_dir)
        try:
            write_summary(hydra.sweep.dir)
        except Exception as error:  # a summary problem must not fail a finished job
            print(f"litpredict: could not write the sweep summary: {error}", file=sys.stderr)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from litpredict.sweep.summary import write_summary

        if "ckpt_path" in config and Path(config.hydra.sweep.dir).is_dir():
            write_summary(config.hydra.sweep.dir)
