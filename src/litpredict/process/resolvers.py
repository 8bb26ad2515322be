"""OmegaConf resolvers used by conf/ (registered when an entrypoint is imported)."""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

from omegaconf import OmegaConf


def job_dir_name(num: int | str, ckpt_path: str | None, run: str | None = None) -> str:
    """``<num>_<checkpoint stem>`` for a checkpoint sweep's job folder, else ``<num>``.

    ``run`` (a sweep over several training runs' checkpoints) names the run too:
    ``<num>_<run>-<stem>``, so that ``3_2024-05-01_12-00-00-last`` says whose ``last`` it is.
    """
    if not ckpt_path:
        return str(num)
    stem = _folder_safe(Path(str(ckpt_path)).stem)
    return f"{num}_{_folder_safe(run)}-{stem}" if run else f"{num}_{stem}"


def _folder_safe(text: str) -> str:
    """One folder name, without the spaces and commas that shells and Hydra stumble on,
    and without ``${``: Hydra stores the job folder in ``hydra.runtime.output_dir`` as a
    plain string that OmegaConf later resolves (the log file's path), so a file named
    ``leak${oc.env:VAR}.ckpt`` would read ``VAR`` into paths. The folder says ``_{``."""
    return re.sub(r"[\s,/\\]+", "_", text).replace("${", "_{")


def run_name(local_name: str) -> str:
    """``<local_name>_<unique id>``, agreed by every rank of a torchrun/srun/RANK launch.

    ``local_name`` is this process's ``${now:...}``; in a multi-rank launch the ranks' names
    differ, so rank 0's (or the srun step's identity) is used (litpredict.process.ranks).
    """
    name = f"{local_name}_{secrets.token_hex(3)}"
    if not multi_rank_launch():
        return name
    from litpredict.process.ranks import launch_run_name  # imports torch: only when needed

    return launch_run_name(name)


def multi_rank_launch() -> bool:
    variables = ("TORCHELASTIC_USE_AGENT_STORE", "SLURM_STEP_NUM_TASKS", "WORLD_SIZE")
    return any(os.environ.get(v, "1").strip() not in ("", "1") for v in variables)


def hydra_subdir() -> str | None:
    """``.hydra`` for rank 0 (or a single process); ``None`` (not written) for other ranks."""
    for variable in ("RANK", "SLURM_PROCID"):  # distributed.RANK_VARIABLES, without torch
        value = os.environ.get(variable, "").strip()
        if value.isdigit():
            return ".hydra" if int(value) == 0 else None
    return ".hydra"


def gpus_per_node(accelerator: str | None, devices: int | str | None) -> int | str | None:
    """What a SLURM job requests as GPUs: ``devices`` for a GPU trainer, else none.

    A CPU-only partition rejects any gres request ("Invalid generic resource").
    """
    return devices if str(accelerator).lower() in ("gpu", "cuda") else None


def register() -> None:
    # Cached, so the run and sweep directories resolve once per run (Hydra copies the
    # cache into every job of a sweep), yet two runs started in the same second differ.
    OmegaConf.register_new_resolver(
        "lp_uid", lambda: secrets.token_hex(3), use_cache=True, replace=True
    )
    # the progress bar's stream: a bar redirected into a file would be its redraws
    OmegaConf.register_new_resolver("lp_isatty", lambda: sys.stdout.isatty(), replace=True)
    OmegaConf.register_new_resolver("lp_job_dir", job_dir_name, replace=True)
    OmegaConf.register_new_resolver("lp_run_name", run_name, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("lp_hydra_subdir", hydra_subdir, replace=True)
    OmegaConf.register_new_resolver("lp_gpus_per_node", gpus_per_node, replace=True)


register()
