"""Writing predictions: per-rank shards while predicting, one ordered set of files at the end."""

from litpredict.writing.callback import PredictionWriter
from litpredict.writing.formats import FORMATS

__all__ = ["FORMATS", "PredictionWriter"]
