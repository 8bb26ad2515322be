"""A DDP rank shuts its gloo process group down before the interpreter finalizes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hydra import compose, initialize_config_dir

import litpredict.process.resolvers  # noqa: F401  (conf/ uses litpredict's resolvers)
from litpredict.process.config_dir import config_dir
from litpredict.process.ranks import DestroyProcessGroupAtExit
from litpredict.trainer import build

# A one-rank gloo group, then an atexit probe registered *before* the callback's setup:
# atexit runs handlers last-in first-out, so the probe sees the group as the interpreter
# is about to finalize, which is when a live gloo worker thread aborts the rank.
RANK = """
import atexit, sys
import torch, torch.distributed as dist
from litpredict.process import ranks

calls = []
destroy = ranks.destroy_process_group
ranks.destroy_process_group = lambda: calls.append(1) or destroy()

dist.init_process_group("gloo", init_method=f"file://{sys.argv[1]}", rank=0, world_size=1)
dist.all_reduce(torch.tensor(1))
atexit.register(lambda: print(f"destroyed {len(calls)}x, initialized: {dist.is_initialized()}"))
if sys.argv[2] == "with-callback":
    ranks.DestroyProcessGroupAtExit().setup(None, None, "predict")
    ranks.DestroyProcessGroupAtExit().setup(None, None, "predict")  # a second run
"""


@pytest.mark.parametrize(
    "variant,expected",
    [
        ("with-callback", "destroyed 1x, initialized: False"),
        ("without", "destroyed 0x, initialized: True"),
    ],
)
def test_gloo_group_is_destroyed_once_before_finalization(tmp_path, variant, expected) -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(RANK), str(tmp_path / "store"), variant],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [expected]


def test_setup_without_a_process_group_registers_nothing(monkeypatch) -> None:
    registered = []
    monkeypatch.setattr("atexit.register", registered.append)
    DestroyProcessGroupAtExit().setup(None, None, "predict")
    assert registered == []


@pytest.mark.parametrize("trainer", ["cpu", "ddp_cpu"])
def test_every_built_trainer_carries_the_callback(tmp_path, trainer) -> None:
    overrides = [f"trainer={trainer}", "ckpt_path=x.ckpt", f"trainer.default_root_dir={tmp_path}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("predict", overrides=overrides)
    callbacks = build.trainer(cfg, callbacks=[]).callbacks
    assert sum(isinstance(c, DestroyProcessGroupAtExit) for c in callbacks) == 1
