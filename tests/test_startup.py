"""Start-up without the cycle collector (``litpredict.process.collector``)."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest

from conftest import run_cli
from litpredict.process.collector import collector_paused, resume_collector


class _Node:
    other: _Node | None = None


@pytest.fixture
def unfrozen():
    """The test process's own objects go back to the collector afterwards."""
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def _garbage_cycle() -> weakref.ref:
    node = _Node()
    node.other = node
    return weakref.ref(node)


def test_resume_frees_start_ups_garbage_then_freezes_the_survivors(unfrozen) -> None:
    with collector_paused():
        assert not gc.isenabled()
        cycle = _garbage_cycle()
        gc.collect(0)  # an explicit young pass may still run; automatic ones do not
        survivor = _Node()
        resume_collector()
        assert cycle() is None, "the garbage of start-up was kept"
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
        assert all(o is not survivor for o in gc.get_objects()), "not frozen"
    assert gc.isenabled()


def test_a_command_that_ends_before_its_loop_switches_the_collector_on_again(unfrozen) -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the checkpoint could not be read")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing frozen without resume


def test_resume_leaves_a_running_collector_and_its_objects_alone(unfrozen) -> None:
    """A library caller's process (tests, notebooks): nothing of theirs is frozen."""
    assert gc.isenabled()
    resume_collector()
    assert gc.get_freeze_count() == 0


def test_train_and_predict_build_without_the_collector_and_loop_with_it(tmp_path) -> None:
    """The real commands: the model is built while the collector is paused, the training
    and prediction loops run with it on and start-up's objects frozen (state 3)."""
    model = ("experiment=linear_regression", "model._target_=startup_models.CollectorWatcher")
    train_dir, predict_dir = tmp_path / "train", tmp_path / "predict"
    run_cli("train", *model, "trainer.max_epochs=1", f"hydra.run.dir={train_dir}", cwd=tmp_path)
    manifest = json.loads((train_dir / "manifest.json").read_text())
    assert manifest["metrics"]["collector_state"] == 3.0
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    run_cli("predict", *model, f"ckpt_path={ckpt}", f"hydra.run.dir={predict_dir}", cwd=tmp_path)
    states = np.load(predict_dir / "predictions.npy")
    assert len(states) == 2048 and set(np.unique(states)) == {3.0}
