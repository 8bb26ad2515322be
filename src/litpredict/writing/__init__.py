"""Writing predictions, one lifecycle: prepare (rank 0) -> append (each rank) -> finalize.

``callback`` (the Lightning callback that runs it), ``outputs`` (a batch as arrays),
``shard_writer`` (a rank's files written and committed), ``shard_layout`` (their folder,
read back), ``seen_indices`` (Lightning's private record of batch
indices), ``merge`` (shards into dataset order), ``formats`` (npy, pt, parquet, csv) and
``finalize`` (shards on disk -> final files, hashed), ``metrics`` (label metrics),
``segments`` (a stopped attempt's shard cut back to its good commits), ``resume`` (a
run stopped part way continues from what it committed) and ``resumed_loader`` (the
batches it has left).
Imports process/, rundir/, data.base, data.samplers and trainer.lightning_api; never a
command.
"""

from litpredict.writing.callback import PredictionWriter
from litpredict.writing.formats import FORMATS

__all__ = ["FORMATS", "PredictionWriter"]
