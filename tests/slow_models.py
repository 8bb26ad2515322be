"""Models slow on purpose: a run long enough to be stopped in its middle (tests of resuming)."""

from __future__ import annotations

import time

from litpredict.models import LinearRegression


class SlowLinear(LinearRegression):
    """The linear model, sleeping ``delay_s`` in every predict_step; predictions unchanged."""

    def __init__(self, delay_s: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def predict_step(self, batch, batch_idx):
        time.sleep(self.delay_s)
        return super().predict_step(batch, batch_idx)
