"""A ``ddp_spawn`` rank's SIGTERM: a flag the prediction writer acts on, never a collective."""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

from pytorch_lightning.callbacks import Callback

from litpredict.process.signals import flag_sigterm
from litpredict.trainer import lightning_api


class SigtermFlagInSpawnedRanks(lightning_api.NoBatchHooks, Callback):
    """In a rank that ``ddp_spawn`` started, SIGTERM only sets litpredict's flag; the writer
    then commits what the rank wrote and ends it (``writing.callback``).

    Why: the main process stops its ranks itself (``signals.stop_children``), and
    Lightning's SIGTERM handler, installed as the loop starts, broadcasts a tensor from
    rank 0 inside the handler (``_SignalConnector._sigterm_notifier_fn``). A rank that got
    its SIGTERM first may have committed and exited before another rank's handler runs;
    that broadcast then fails ("Connection closed by peer") inside whatever the rank was
    doing, and the console shows its traceback: about one interrupt in eight of a 2-rank
    ``ddp_cpu`` run here. Ranks that a launcher started (torchrun, srun, Lightning's
    ``ddp``) are commands of their own, whose SIGTERM raises (``signals.interrupts_raise``).
    """

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        if spawned_rank(trainer):
            signal.signal(signal.SIGTERM, flag_sigterm)


def spawned_rank(trainer: Any) -> bool:
    """Whether this process is a rank the Trainer's own launcher started with
    multiprocessing (``ddp_spawn``, ``ddp_fork``): not the main process, nor a job that
    Hydra's joblib launcher runs in a worker process (also a multiprocessing child)."""
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    by_multiprocessing = any(
        cls.__name__ == "_MultiProcessingLauncher" for cls in type(launcher).__mro__
    )
    return by_multiprocessing and multiprocessing.parent_process() is not None


# LightningSigtermFlagInSpawnedRanks: the same as a lightning.pytorch Callback.
__getattr__ = lightning_api.twins(__name__)
