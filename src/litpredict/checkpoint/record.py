"""Lightning callbacks that ``train.py`` adds, kept out of the entrypoint so that
``litpredict.train --help`` does not import Lightning."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import Callback

from litpredict.trainer import lightning_api


class RecordModelTargetMixin:
    """Stores the model's class path in each checkpoint, so predict can check it."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        from litpredict.checkpoint.reading import record_model_target

        record_model_target(checkpoint, pl_module)


class RecordModelTarget(RecordModelTargetMixin, Callback):
    __doc__ = RecordModelTargetMixin.__doc__


# LightningRecordModelTarget: the same as a lightning.pytorch Callback.
__getattr__ = lightning_api.twins(__name__)
