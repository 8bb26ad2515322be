"""A model whose own code warns, for tests of what the console shows."""

import os
import time
import warnings

from litpredict.models import LinearRegression

MESSAGE = "console test: predict_step saw an odd batch"
SLEEP_VARIABLE = "CONSOLE_TEST_SLEEP_S"  # seconds per batch: a run long enough for a bar


class WarnsInPredict(LinearRegression):
    """Warns in every ``predict_step``: a problem the user must see, once."""

    def predict_step(self, batch, batch_idx):
        warnings.warn(MESSAGE, stacklevel=1)
        time.sleep(float(os.environ.get(SLEEP_VARIABLE, "0")))
        return super().predict_step(batch, batch_idx)
