"""Which DDP rank this process is, whether its launch environment makes sense, and
process-group hygiene: shut gloo down before exit."""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from typing import Any

from pytorch_lightning.callbacks import Callback

from litpredict.process.errors import UserError
from litpredict.process.rank_zero import RANK_VARIABLES, global_rank, is_global_zero  # noqa: F401
from litpredict.trainer import lightning_api

# Where a launcher puts a process's rank on its own node: torchrun, Lightning's launchers, srun.
LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID")


def local_rank() -> int:
    """This process's rank on its own node: the one that downloads what the node shares.

    The launcher's environment (Lightning sets ``LOCAL_RANK`` in its ``ddp`` and
    ``ddp_spawn`` processes too); without one, the global rank (one node).
    """
    for variable in LOCAL_RANK_VARIABLES:
        value = os.environ.get(variable, "").strip()
        if value.isdigit():
            return int(value)
    return global_rank()


# --- The launch environment -------------------------------------------------------------
# Every part of litpredict (and Lightning) takes RANK / LOCAL_RANK at their word: a process
# that believes it is rank 1 leaves writing to rank 0. A stray variable (an exported RANK
# from another job, a copied shell line) then makes a whole run write nothing, exit 0 and
# say nothing. So the variables are checked against each other before a run starts.

RANK_FIX = (
    "unset the stray variables (e.g. env -u RANK -u LOCAL_RANK -u WORLD_SIZE python -m "
    "litpredict.predict ...), or start the processes with torchrun or srun, which set them "
    "consistently"
)


class LaunchError(UserError):
    """Rank variables that contradict each other, or processes that would repeat one run."""


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    """The value of ``name`` as an integer >= 0; None when unset; a LaunchError when not one."""
    value = env.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise LaunchError(f"{name}={value!r} is not a process number (an integer >= 0)", RANK_FIX)
    return int(value)


def launch_problem(env: Mapping[str, str] | None = None) -> str | None:
    """What is inconsistent among RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (None: nothing).

    torchrun sets all four; Lightning's own ``ddp`` launcher gives its extra processes
    LOCAL_RANK and WORLD_SIZE (no RANK). A rank must be below its world size, and a process
    other than the first needs a world of several.
    """
    env = os.environ if env is None else env
    rank, world = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")
    local, local_world = _env_int(env, "LOCAL_RANK"), _env_int(env, "LOCAL_WORLD_SIZE")
    for name, size in (("WORLD_SIZE", world), ("LOCAL_WORLD_SIZE", local_world)):
        if size == 0:
            return f"{name}=0 (a launch has at least one process)"
    if rank is not None and rank > 0 and world is None:
        return f"RANK={rank} is set but WORLD_SIZE is not (this process would not write)"
    if rank is not None and world is not None and rank >= world:
        return f"RANK={rank} with WORLD_SIZE={world} (a rank must be below the world size)"
    if local is not None and local > 0 and (world is None or local >= world):
        shown = "is not set" if world is None else f"is {world}"
        return (
            f"LOCAL_RANK={local} is set but WORLD_SIZE {shown} (a process other than the "
            "first needs a launch of several; this one would not write)"
        )
    if local is not None and local_world is not None and local >= local_world:
        return f"LOCAL_RANK={local} with LOCAL_WORLD_SIZE={local_world}"
    if local is not None and rank is not None and local > rank:
        return f"LOCAL_RANK={local} above RANK={rank} (a process's local rank is at most its rank)"
    return None


def check_launch_environment(env: Mapping[str, str] | None = None) -> None:
    """Stop, naming the variables, when the rank variables contradict each other."""
    problem = launch_problem(env)
    if problem is not None:
        raise LaunchError(f"inconsistent launch environment: {problem}", RANK_FIX)


def check_one_run_per_launch(trainer_world_size: int, env: Mapping[str, str] | None = None) -> None:
    """Refuse processes that would each do the same whole run.

    torchrun (or any RANK/WORLD_SIZE launch) starts WORLD_SIZE processes; when the trainer
    runs one process (no DDP strategy), every one of them predicts every sample into the
    same run directory. Lightning's own ``ddp`` launcher sets no RANK, so its leftover
    WORLD_SIZE in a later job of a sweep does not count.
    """
    env = os.environ if env is None else env
    if not env.get("RANK", "").strip():
        return
    launched = _env_int(env, "WORLD_SIZE") or 1
    if launched > 1 and trainer_world_size < launched:
        raise LaunchError(
            f"{launched} processes were launched (WORLD_SIZE={launched}, this one RANK="
            f"{env.get('RANK')}), but the trainer runs {trainer_world_size}: each process "
            "would do the same whole run into the same run directory",
            "launch one process, or let the trainer use them all: trainer.strategy=ddp with "
            "trainer.devices as --nproc-per-node (and trainer.num_nodes as --nnodes), or "
            "trainer=ddp on GPUs",
        )


def destroy_process_group() -> None:
    """Destroy the default process group if this process still has one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class DestroyProcessGroupAtExitMixin:
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


# --- One run directory per launch -------------------------------------------------------
# Each rank of a torchrun, srun or RANK/WORLD_SIZE launch is its own Hydra app and resolves
# the default run directory itself; ``${now:}`` and a random id differ per process. The
# name is therefore agreed: from the launcher's identity where it has one (an srun step),
# else rank 0 decides and tells the others through a TCPStore at MASTER_ADDR:MASTER_PORT
# (torchrun's agent hosts one; for a bare RANK/WORLD_SIZE launch rank 0 hosts it briefly).

STORE_TIMEOUT_S = 300  # how long a rank waits for rank 0's name (rank 0 may start late)
_agreements = 0  # a process composing several runs (tests) agrees on each one in turn


def launch_run_name(local_name: str) -> str:
    """The default run directory's name: ``local_name`` outside a multi-rank launch.

    Under srun (a step of several tasks) ``slurm-<job id>.<step id>``, the same in every
    task; under torchrun or a RANK/WORLD_SIZE launch, rank 0's ``local_name``.
    """
    env = os.environ
    if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        return _from_rank_zero(local_name, host=False)
    if (
        _int_env("SLURM_STEP_NUM_TASKS") > 1
        and env.get("SLURM_STEP_ID")
        and env.get("SLURM_JOB_ID")
    ):
        return f"slurm-{env['SLURM_JOB_ID']}.{env['SLURM_STEP_ID']}"
    if _int_env("WORLD_SIZE") > 1 and env.get("RANK") and env.get("MASTER_PORT"):
        return _from_rank_zero(local_name, host=True)
    return local_name


def _int_env(name: str) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else 0


def _from_rank_zero(local_name: str, host: bool) -> str:
    """Rank 0 publishes ``local_name`` in the launch's TCPStore; every rank returns it.

    ``host``: no agent runs a store, so rank 0 serves one on MASTER_PORT until every rank
    has read the name, then closes it (Lightning binds the port again for the process group
    seconds later, after the model is built).
    """
    from datetime import timedelta

    from torch.distributed import TCPStore

    global _agreements
    _agreements += 1
    env = os.environ
    rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
    key = f"litpredict/run_name/{env.get('TORCHELASTIC_RESTART_COUNT', '0')}/{_agreements}"
    store = TCPStore(
        env.get("MASTER_ADDR", "127.0.0.1"),
        int(env["MASTER_PORT"]),
        is_master=host and rank == 0,
        timeout=timedelta(seconds=STORE_TIMEOUT_S),
        wait_for_workers=False,
    )
    if rank == 0:
        store.set(key, local_name)
        name = local_name
    else:
        name = store.get(key).decode()
    if host:
        if rank == 0:
            store.wait([f"{key}/read/{r}" for r in range(1, world_size)])
        else:
            store.set(f"{key}/read/{rank}", "1")
    del store
    return name


class SharedRunDirCheck(lightning_api.NoBatchHooks, Callback):
    """Stops a multi-node run whose run directory not every rank sees, before predicting.

    Why: rank 0 merges the shards it finds; on a node-local directory it would find only
    its own and fail late (samples with no prediction) or, worse, merge half. Every rank
    writes a marker, then each checks it sees all of them; the verdict is collective, so
    every rank stops with the same message.
    """

    MARKERS = ".litpredict-ranks"

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        from pathlib import Path

        world_size = int(getattr(trainer, "world_size", 1))
        if world_size < 2:
            return
        markers = Path(trainer.default_root_dir) / self.MARKERS
        markers.mkdir(parents=True, exist_ok=True)
        (markers / str(trainer.global_rank)).write_text(os.uname().nodename)
        trainer.strategy.barrier("litpredict-rank-markers")
        seen = all((markers / str(r)).exists() for r in range(world_size))
        shared = trainer.strategy.reduce_boolean_decision(seen, all=True)
        trainer.strategy.barrier("litpredict-rank-markers-read")
        if trainer.global_rank == 0:
            for marker in markers.glob("*"):
                marker.unlink(missing_ok=True)
            markers.rmdir()
        if not shared:
            from litpredict.process.errors import UserError

            raise UserError(
                f"the run directory {Path(trainer.default_root_dir).resolve()} is not the "
                f"same directory for all {world_size} ranks (a rank does not see the others' "
                "files): its predictions could not be merged",
                "put the outputs on a filesystem every node mounts at the same path "
                "(LITPREDICT_OUTPUTS=/shared/dir or hydra.run.dir=/shared/dir)",
            )


class DestroyProcessGroupAtExit(
    DestroyProcessGroupAtExitMixin, lightning_api.NoBatchHooks, Callback
):
    __doc__ = DestroyProcessGroupAtExitMixin.__doc__


# LightningDestroyProcessGroupAtExit: the same as a lightning.pytorch Callback.
__getattr__ = lightning_api.twins(__name__)
