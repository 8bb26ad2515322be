"""The console's Trainer callbacks: the "what runs" line, logging in spawned ranks, the bar.

Each is written once as a mixin with a ``pytorch_lightning`` class and a ``lightning`` twin
(``Lightning<Name>``, see :func:`litpredict.trainer.lightning_api.twins`).
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
from typing import Any

from pytorch_lightning.callbacks import Callback, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from litpredict.process.console import logging_setup, set_up_worker, what_runs_line
from litpredict.trainer import lightning_api

log = logging.getLogger(__name__)

BAR_DELAY_S = 2.0  # a run shorter than this never draws its bar


class WhatRunsMixin:
    """Logs the line that says what runs, on rank 0, once the predict data is set up.

    Not before: the number of samples is known only once Lightning has called the
    datamodule's ``setup`` (under ``ddp_spawn`` in the rank-0 worker).
    """

    def __init__(self, checkpoint: str, datamodule: str) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.datamodule = datamodule

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        loaders = trainer.predict_dataloaders
        if isinstance(loaders, (list, tuple)):
            loaders = loaders[0] if loaders else None
        try:
            num_samples = len(loaders.dataset)
        except (AttributeError, TypeError, NotImplementedError):
            num_samples = None  # an iterable dataset: the writer says what it needs
        line = what_runs_line(
            type(pl_module).__qualname__,
            self.checkpoint,
            self.datamodule,
            num_samples,
            trainer.strategy.root_device.type,
            trainer.world_size,
        )
        log.info("%s", line)


class WhatRuns(WhatRunsMixin, lightning_api.NoBatchHooks, Callback):
    __doc__ = WhatRunsMixin.__doc__


def what_runs(lightning: Any, checkpoint: Any, datamodule: Any) -> Any:
    """The :class:`WhatRuns` callback of the run's Lightning package (``build.lightning``)."""
    inner = getattr(datamodule, "inner", datamodule)  # a datamodule of the other package
    return lightning.counterpart(WhatRuns)(str(checkpoint), type(inner).__qualname__)


class WorkerLoggingMixin:
    """Carries the run's logging into ``ddp_spawn`` ranks, which unpickle the Trainer with
    its callbacks in fresh interpreters: the parent's handlers are taken when this is
    pickled and set up when it is unpickled, before any rank logs
    (:func:`litpredict.process.console.set_up_worker`; a no-op in the parent)."""

    def __getstate__(self) -> dict[str, Any]:
        setup = logging_setup()
        for spec in setup["handlers"]:  # a foreign filter or formatter must not stop the run
            spec["filters"] = [f for f in spec["filters"] if _pickles(f)]
            if not _pickles(spec["formatter"]):
                spec["formatter"] = None
        return {**self.__dict__, "_logging_setup": setup}

    def __setstate__(self, state: dict[str, Any]) -> None:
        setup = state.pop("_logging_setup", None)
        self.__dict__.update(state)
        if setup:
            set_up_worker(setup)


class WorkerLogging(WorkerLoggingMixin, lightning_api.NoBatchHooks, Callback):
    __doc__ = WorkerLoggingMixin.__doc__


def _pickles(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


class DelayedTqdm(Tqdm):
    """Lightning's bar, drawing nothing until ``BAR_DELAY_S`` after it was made.

    Not tqdm's own ``delay``: Lightning redraws through ``refresh()``, which ignores it.
    A bar never drawn leaves nothing behind when closed (no empty line).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._visible_from = time.monotonic() + BAR_DELAY_S
        self._drawn = False
        super().__init__(*args, **kwargs)

    def display(self, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._visible_from:
            return False
        self._drawn = True
        return super().display(*args, **kwargs)

    def close(self) -> None:
        if not self._drawn:
            self.leave = False
        super().close()


class DelayedProgressBarMixin:
    """Lightning's bar, drawn for predictions only once they have run ``BAR_DELAY_S``.

    A short run's bar is one more line to read (``100% 2/2``) and says nothing; on a long
    one it shows the pace. The bar is on only when stdout is a terminal
    (``trainer.enable_progress_bar: ${lp_isatty:}``); it writes to stdout, never to a log.
    """

    def init_predict_tqdm(self) -> Any:
        return DelayedTqdm(
            desc=self.predict_description,
            position=(2 * self.process_position),
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )


class DelayedProgressBar(DelayedProgressBarMixin, TQDMProgressBar):
    __doc__ = DelayedProgressBarMixin.__doc__


# LightningWhatRuns, LightningWorkerLogging, LightningDelayedProgressBar: lightning.pytorch's.
__getattr__ = lightning_api.twins(__name__)
