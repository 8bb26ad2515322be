"""Process-group hygiene for DDP ranks: shut gloo down before the interpreter does."""

from __future__ import annotations

import atexit
from typing import Any

from pytorch_lightning.callbacks import Callback


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
