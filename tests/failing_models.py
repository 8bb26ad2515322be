"""Models that fail on purpose, for tests of how a failure ends a run."""

from litpredict.models import LinearRegression


class FailsOnRank(LinearRegression):
    """Raises in predict_step on one DDP rank, after that rank has predicted a batch."""

    def __init__(self, failing_rank: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.failing_rank = failing_rank

    def predict_step(self, batch, batch_idx):
        if self.global_rank == self.failing_rank and batch_idx == 1:
            raise RuntimeError(f"boom on rank {self.global_rank}")
        return super().predict_step(batch, batch_idx)
