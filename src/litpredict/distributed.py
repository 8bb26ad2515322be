"""Which DDP rank this process is, and process-group hygiene: shut gloo down before exit."""

from __future__ import annotations

import atexit
import os
from typing import Any

from pytorch_lightning.callbacks import Callback

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


def destroy_process_group() -> None:
    """Destroy the default process group if this process still has one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DestroyProcessGroupAtExit(Callback):
    """Destroys a gloo process group at interpreter exit, as Lightning does for NCCL.

    Why: a gloo worker thread drops its last reference to a finished collective (the
    tensor of Lightning's dataloader-length ``all_reduce``) some time after ``wait()``
    returns, and needs the GIL to do so. If the rank is already finalizing, the thread
    is torn down in the middle of a C++ destructor and the rank aborts with
    ``terminate called without an active exception`` (``SIGABRT``), failing a run whose
    predictions were all written. Destroying the group in an ``atexit`` handler, before
    finalization, joins those threads; torch releases the GIL while it joins.
    Lightning registers the same handler only for NCCL (``_init_dist_connection``).
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if dist.get_backend() != "nccl":  # Lightning registers its own for NCCL
            atexit.unregister(destroy_process_group)  # once a process, however many runs
            atexit.register(destroy_process_group)
