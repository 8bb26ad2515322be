"""OmegaConf resolvers used by conf/ (registered when an entrypoint is imported)."""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

from omegaconf import OmegaConf


def job_dir_name(num: int | str, ckpt_path: str | None) -> str:
    """``<num>_<checkpoint stem>`` for a checkpoint sweep's job folder, else ``<num>``."""
    if not ckpt_path:
        return str(num)
    stem = re.sub(r"[\s,/\\]+", "_", Path(str(ckpt_path)).stem)
    return f"{num}_{stem}"


def register() -> None:
    # Cached, so the run and sweep directories resolve once per run (Hydra copies the
    # cache into every job of a sweep), yet two runs started in the same second differ.
    OmegaConf.register_new_resolver(
        "lp_uid", lambda: secrets.token_hex(3), use_cache=True, replace=True
    )
    OmegaConf.register_new_resolver("lp_isatty", lambda: sys.stderr.isatty(), replace=True)
    OmegaConf.register_new_resolver("lp_job_dir", job_dir_name, replace=True)


register()
