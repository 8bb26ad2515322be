"""A model that reports what Python's cycle collector was doing when it was built and when
the loop ran (``tests/test_startup.py``)."""

import gc

import torch

from litpredict.models import LinearRegression


def collector_state(built_with_collector_on: bool) -> float:
    """4 if the collector was on while the model was built, + 2 if it is on now, + 1 if
    objects are frozen now: 3 is what a command's start-up and loop should give."""
    return 4.0 * built_with_collector_on + 2.0 * gc.isenabled() + 1.0 * (gc.get_freeze_count() > 0)


class CollectorWatcher(LinearRegression):
    """Trains and predicts as its parent; logs (training) or returns (prediction) the state."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.built_with_collector_on = gc.isenabled()

    def training_step(self, batch, batch_idx):
        self.log("collector_state", collector_state(self.built_with_collector_on))
        return super().training_step(batch, batch_idx)

    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.full((len(x), 1), collector_state(self.built_with_collector_on))
