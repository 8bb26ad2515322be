"""``split=predict|test|val|train``: predict on any loader of a datamodule.

Most research datamodules (lightning-hydra-template's ``MNISTDataModule`` among them) have
train, val and test loaders and no ``predict_dataloader``. The chosen loader stands in for
``predict_dataloader``, and ``setup`` is called with the stage that builds it. Lightning
still writes predictions by dataset index, so a shuffling train loader predicts in dataset
order too.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from litpredict.process.errors import DataError

# split -> (the datamodule's hook, the setup stage that builds its dataset)
SPLITS = {
    "predict": ("predict_dataloader", "predict"),
    "test": ("test_dataloader", "test"),
    "val": ("val_dataloader", "validate"),
    "train": ("train_dataloader", "fit"),
}


def loaders_of(datamodule: Any) -> list[str]:
    """The splits whose loader ``datamodule``'s class defines itself."""
    return [split for split, (hook, _) in SPLITS.items() if _defines(datamodule, hook)]


def _defines(datamodule: Any, hook: str) -> bool:
    """Whether a class below Lightning's own LightningDataModule defines ``hook``."""
    for cls in type(datamodule).__mro__:
        if hook in vars(cls):
            return cls.__module__.split(".")[0] not in ("pytorch_lightning", "lightning")
    return False


def use_split(datamodule: Any, split: str) -> Any:
    """``datamodule``, predicting on its ``split`` loader; an unknown split or a missing
    loader is an error naming the loaders it has."""
    if split not in SPLITS:
        raise DataError(
            f"split={split!r} is not a split", f"set split to one of {', '.join(SPLITS)}"
        )
    hook, stage = SPLITS[split]
    has = loaders_of(datamodule)
    if split not in has:
        name = type(datamodule).__qualname__
        others = [s for s in has if s != "predict"]
        raise DataError(
            f"{name} has no {hook}"
            + (f"; it has {', '.join(f'{s}_dataloader' for s in has)}" if has else ""),
            f"pass split={others[0]} (or {', '.join(others[1:])})"
            if len(others) > 1
            else (f"pass split={others[0]}" if others else "give it a predict_dataloader"),
        )
    if split == "predict":
        return datamodule
    # Instance attributes of bound methods and partials: they pickle for ddp_spawn.
    datamodule.predict_dataloader = getattr(datamodule, hook)
    datamodule.setup = partial(_setup_as, datamodule.setup, stage)
    return datamodule


def _setup_as(setup: Any, split_stage: str, *args: Any, **kwargs: Any) -> Any:
    """The datamodule's own ``setup`` for ``split_stage``, whatever stage Lightning asks for."""
    return setup(split_stage)
