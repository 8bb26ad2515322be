"""Which DDP rank this process is, without importing Lightning (the console's filter asks
on every line; :mod:`litpredict.process.ranks` re-exports these for everyone else)."""

from __future__ import annotations

import os

# Where a launcher puts a process's global rank: torchrun and Lightning's ddp launcher, srun.
RANK_VARIABLES = ("RANK", "SLURM_PROCID")


def global_rank() -> int:
    """This process's rank among all the processes of a DDP job (0 outside DDP).

    The one answer for every part of litpredict. Lightning's ``rank_zero_only.rank`` once
    Lightning is loaded (its strategy sets it in each rank, also in ``ddp_spawn`` workers);
    before that, the launcher's environment. Checks no Trainer, so it works before one exists.
    """
    from lightning_utilities.core.rank_zero import rank_zero_only  # light; Lightning's own

    rank = getattr(rank_zero_only, "rank", None)
    if rank is not None:
        return int(rank)
    for variable in RANK_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def is_global_zero() -> bool:
    """Whether this process is rank 0: the one that writes manifests, summaries and outputs."""
    return global_rank() == 0
