"""What an approach is: a name and the command (with its "done" test) that runs it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.measure import Done, worker_done

ENTRY = Path(__file__).resolve().parents[1] / "bench.py"  # workers run as bench.py --worker


@dataclass(frozen=True)
class Task:
    """One run of an approach: which input, checkpoint, batch size, and where outputs go."""

    experiment: str
    data: Path
    ckpt: Path
    batch: int
    out: Path


Worker = Callable[[str, str, int, str], None]  # (data, ckpt, batch, out .npy) -> None


@dataclass(frozen=True)
class Approach:
    """``command(task)`` gives the command line and its done test; a baseline has a ``worker``
    (run in a fresh process as ``bench.py --worker NAME``), litpredict its own command."""

    name: str
    worker: Worker | None = None
    command: Callable[[Task], tuple[list[str], Done]] | None = None

    def command_for(self, task: Task) -> tuple[list[str], Done]:
        if self.command is not None:
            return self.command(task)
        command = [
            sys.executable, str(ENTRY), "--worker", self.name, "--data", str(task.data),
            "--ckpt", str(task.ckpt), "--batch", str(task.batch), "--out", str(task.out),
        ]  # fmt: skip
        return command, worker_done(task.out)


def load_model(ckpt: str):
    """The checkpoint's LightningModule, rebuilt the way a plain torch user would."""
    import importlib

    import torch

    from litpredict.checkpoint.reading import trained_model_target

    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    module, _, name = trained_model_target(checkpoint).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    model = cls(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    return cls, model.eval()
