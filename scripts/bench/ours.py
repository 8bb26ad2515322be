"""litpredict itself: the real command on the same input, timed by its manifest.

``litpredict`` commits what it wrote every 5 s (the default, so a stopped run resumes);
``litpredict-no-commits`` (``resume.commit_every_s=null``) only at the end: side by side
they show what committing costs. ``litpredict-commit-every-batch`` is the worst case, a
commit (two fsyncs and a re-read of the batch) after every batch.
"""

from __future__ import annotations

import sys

from bench.approach import Approach, Task
from bench.measure import Done, manifest_done


def litpredict_command(task: Task, *extra: str) -> tuple[list[str], Done]:
    command = [
        sys.executable, "-m", "litpredict.predict", f"experiment={task.experiment}",
        "datamodule=array_file", f"datamodule.path={task.data}",
        f"datamodule.batch_size={task.batch}", f"ckpt_path={task.ckpt}",
        f"hydra.run.dir={task.out}", *extra,
    ]  # fmt: skip
    return command, manifest_done(task.out)


LITPREDICT = Approach("litpredict", command=litpredict_command)
NO_COMMITS = "litpredict-no-commits"
LITPREDICT_NO_COMMITS = Approach(
    NO_COMMITS, command=lambda task: litpredict_command(task, "resume.commit_every_s=null")
)
EVERY_BATCH = "litpredict-commit-every-batch"
LITPREDICT_EVERY_BATCH = Approach(
    EVERY_BATCH, command=lambda task: litpredict_command(task, "resume.commit_every_batches=1")
)
