"""litpredict itself: the real command on the same input, timed by its manifest."""

from __future__ import annotations

import sys

from bench.approach import Approach, Task
from bench.measure import Done, manifest_done


def litpredict_command(task: Task) -> tuple[list[str], Done]:
    command = [
        sys.executable, "-m", "litpredict.predict", f"experiment={task.experiment}",
        "datamodule=array_file", f"datamodule.path={task.data}",
        f"datamodule.batch_size={task.batch}", f"ckpt_path={task.ckpt}",
        f"hydra.run.dir={task.out}",
    ]  # fmt: skip
    return command, manifest_done(task.out)


LITPREDICT = Approach("litpredict", command=litpredict_command)
