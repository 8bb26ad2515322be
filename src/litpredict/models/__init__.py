"""The three models of the seed article, written as ordinary LightningModules.

Imports only models/ (and Lightning): a user's config names the classes exported here.
"""

from litpredict.models.cnn import CNNClassifier
from litpredict.models.linear import LinearRegression
from litpredict.models.lstm import LSTMSequence

__all__ = ["CNNClassifier", "LSTMSequence", "LinearRegression"]
