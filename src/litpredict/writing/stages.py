"""Where one rank's predict loop spends its time: ``data_s``, ``model_s``, ``write_s``.

The writer ticks a :class:`StageClock` at four moments of Lightning's loop, with
``time.perf_counter`` (well under a microsecond a tick):

- ``start``, when the writer is set up: from there to the first batch is waiting for data
  (the loader's workers starting and the first batch made, an image folder's decode check);
- ``batch_started`` (``on_predict_batch_start``): the time since the previous batch was
  written is ``data_s``: the next batch fetched from the loader and moved to the device;
- ``step_ended`` (the writer's ``on_predict_batch_end``): the time since the batch started
  is ``model_s``: ``predict_step`` and the hooks around it;
- ``written``: the writer's own work on the batch (outputs to NumPy, appended to the
  shard) is ``write_s``.

What the loop does after the last batch (closing the shard) and around it (start-up,
merging the shards, hashing) is in none of them, so the three add up to less than the
run's ``duration_s``.
"""

from __future__ import annotations

import time

STAGES = ("data_s", "model_s", "write_s")


class StageClock:
    """Seconds spent waiting for batches, in ``predict_step`` and writing, on one rank."""

    def __init__(self) -> None:
        self.data_s = 0.0
        self.model_s = 0.0
        self.write_s = 0.0
        self._mark: float | None = None  # the end of the last thing counted
        self._step: float | None = None  # when the current batch started

    def start(self) -> None:
        self._mark = time.perf_counter()

    def batch_started(self) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.data_s += now - self._mark
        self._step = now

    def step_ended(self) -> float:
        """The time now, which the write of this batch is measured from."""
        now = time.perf_counter()
        if self._step is not None:
            self.model_s += now - self._step
            self._step = None
        return now

    def written(self, since: float) -> None:
        now = time.perf_counter()
        self.write_s += now - since
        self._mark = now

    def totals(self) -> dict[str, float]:
        return {name: round(getattr(self, name), 4) for name in STAGES}
