"""Models that fail on purpose, for tests of how a failure ends a run."""

from litpredict.models import LinearRegression
from litpredict.process.errors import DataError


class FailsOnRank(LinearRegression):
    """Raises in predict_step on one DDP rank, after that rank has predicted a batch.

    ``user_error=True`` raises a DataError (problem and fix) instead of a RuntimeError.
    """

    def __init__(self, failing_rank: int = 1, user_error: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.failing_rank = failing_rank
        self.user_error = user_error

    def predict_step(self, batch, batch_idx):
        if self.global_rank == self.failing_rank and batch_idx == 1:
            if self.user_error:
                raise DataError(f"boom on rank {self.global_rank}", "fix that rank's data")
            raise RuntimeError(f"boom on rank {self.global_rank}")
        return super().predict_step(batch, batch_idx)


class RaisesInForward(LinearRegression):
    """The user's forward fails with an error of its own type, whatever the data."""

    def forward(self, x):
        raise KeyError(f"no such feature group for {type(x).__name__}")


class NeedsPickledEntry(LinearRegression):
    """Reads an object its checkpoint holds only pickled, as pytorch-forecasting's DeepAR
    reads its dataset parameters in ``on_load_checkpoint``."""

    def on_load_checkpoint(self, checkpoint):
        self.loss_fn = checkpoint["hyper_parameters"]["loss_fn"]
