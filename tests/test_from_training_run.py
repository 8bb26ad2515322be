"""Predicting from a training run with nothing typed but the checkpoint and the data.

tests/lht_project is laid out as lightning-hydra-template lays a project (``.project-root``,
``configs/``, ``src/train.py`` with rootutils' setup, ``src/models``, ``src/data``) and is
trained by its own Hydra entrypoint, as its users train it. Each prediction is compared
with the model built by hand from the checkpoint's state_dict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import predict_in_process
from test_real_checkpoints import _lht_oracle

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).parent / "lht_project"


def _train(project: Path, *overrides: str) -> Path:
    """``python src/train.py overrides`` in the project, as LHT's users run it; the run dir."""
    env = {k: v for k, v in os.environ.items() if k != "PROJECT_ROOT"}
    before = set((project / "logs" / "train" / "runs").glob("*"))
    subprocess.run(
        [
            sys.executable,
            "src/train.py",
            *overrides,
            "hydra.run.dir=logs/train/runs/${now:%H%M%S%f}",
        ],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (run,) = set((project / "logs" / "train" / "runs").glob("*")) - before
    return run


@pytest.fixture(scope="module")
def lht_runs(tmp_path_factory):
    """The project copied, its data written, and three training runs: the defaults,
    ``experiment=example`` (other layer sizes) and ``model.compile=true`` (a compiled net,
    whose weights are saved as ``net._orig_mod.*``)."""
    project = tmp_path_factory.mktemp("lht") / "project"
    shutil.copytree(PROJECT, project)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 3, 4, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    (project / "data").mkdir()
    np.savez(project / "data" / "mnist.npz", x=x.numpy(), y=y.numpy())
    runs = {
        "default": _train(project),
        "example": _train(project, "experiment=example"),
        "compiled": _train(project, "model.compile=true"),
    }
    return project, x, runs


def _test_split(project: Path) -> list[int]:
    """The indices of the test split, as the project's own datamodule draws them."""
    sys.path.insert(0, str(project))
    try:
        from src.data.mnist_datamodule import MNISTDataModule

        datamodule = MNISTDataModule(data_dir=str(project / "data"))
        datamodule.setup("test")
        return list(datamodule.data_test.indices)
    finally:
        sys.path.remove(str(project))
        for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
            del sys.modules[name]


@pytest.mark.parametrize("run", ["default", "example", "compiled"])
def test_an_lht_run_predicts_its_test_split_with_only_the_checkpoint(lht_runs, run, tmp_path):
    project, x, runs = lht_runs
    ckpt = runs[run] / "checkpoints" / "last.ckpt"
    manifest = predict_in_process(
        tmp_path, f"ckpt_path={ckpt}", "datamodule=from_run", "split=test"
    )
    indices = _test_split(project)
    expected = _lht_oracle(ckpt, x[indices])
    np.testing.assert_allclose(np.load(tmp_path / "run" / "predictions.npy"), expected, atol=1e-5)
    used = manifest["config"]["training_run"]
    assert used["path"] == str(runs[run] / ".hydra" / "config.yaml") and used["kind"] == "hydra"
    assert len(used["sha256"]) == 64
    assert manifest["model_arguments"]["net"] == "training run config"
    assert "accuracy" in manifest["metrics"]  # the test loader's labels feed the metrics


def test_other_data_with_the_runs_model(lht_runs, tmp_path):
    _project, x, runs = lht_runs
    ckpt = runs["example"] / "checkpoints" / "last.ckpt"
    np.save(tmp_path / "x.npy", x.numpy())
    predict_in_process(
        tmp_path,
        f"ckpt_path={ckpt}",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "run" / "predictions.npy"), _lht_oracle(ckpt, x), atol=1e-5
    )


def test_a_datamodule_without_predict_loader_names_the_loaders_it_has(lht_runs, tmp_path):
    from litpredict.process.errors import DataError

    _, _, runs = lht_runs
    with pytest.raises(DataError) as error:
        predict_in_process(tmp_path, f"ckpt_path={runs['default'] / 'checkpoints' / 'last.ckpt'}")
    assert "MNISTDataModule has no predict_dataloader" in error.value.message
    assert "train_dataloader" in error.value.message and "split=test" in error.value.message
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed"


def test_an_unknown_split_is_named(lht_runs, tmp_path):
    from litpredict.process.errors import DataError

    _, _, runs = lht_runs
    with pytest.raises(DataError, match="split='holdout' is not a split"):
        predict_in_process(
            tmp_path,
            f"ckpt_path={runs['default'] / 'checkpoints' / 'last.ckpt'}",
            "datamodule=from_run",
            "split=holdout",
        )


def test_a_target_in_the_run_config_is_checked_before_it_is_called(lht_runs, tmp_path):
    """A run directory is data: its config cannot make litpredict call a function."""
    from litpredict.checkpoint.targets import UnsafeTarget

    project, _, runs = lht_runs
    hostile = project / "logs" / "train" / "runs" / "hostile"
    shutil.copytree(runs["default"], hostile)
    config = hostile / ".hydra" / "config.yaml"
    marker = tmp_path / "marker"
    config.write_text(
        config.read_text().replace(
            "  net:\n",
            f"  evil:\n    _target_: os.system\n    command: touch {marker}\n  net:\n",
            1,
        )
    )
    with pytest.raises(UnsafeTarget, match=r"model\.evil"):
        predict_in_process(
            tmp_path,
            f"ckpt_path={hostile / 'checkpoints' / 'last.ckpt'}",
            "datamodule=from_run",
            "split=test",
        )
    assert not marker.exists()


def test_a_model_group_without_demo_data_asks_for_a_datamodule(tmp_path):
    from litpredict.process.errors import DataError

    groups = tmp_path / "groups" / "model"
    groups.mkdir(parents=True)
    (groups / "mine.yaml").write_text("_target_: litpredict.models.LinearRegression\n")
    torch.save({"state_dict": {}}, tmp_path / "x.ckpt")
    with pytest.raises(DataError, match="no datamodule is chosen") as error:
        predict_in_process(
            tmp_path,
            f"ckpt_path={tmp_path / 'x.ckpt'}",
            f"hydra.searchpath=[file://{tmp_path / 'groups'}]",
            "model=mine",
        )
    assert "datamodule=array_file" in error.value.fix


def test_from_run_without_a_run_config_says_what_was_looked_for(tmp_path):
    from litpredict.process.errors import DataError

    ckpt = tmp_path / "lone.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "global_step": 0}, ckpt)
    with pytest.raises(DataError, match="no training run config was found beside") as error:
        predict_in_process(tmp_path, f"ckpt_path={ckpt}", "model=linear", "datamodule=from_run")
    assert ".hydra/config.yaml" in error.value.message


# --- LightningCLI, the script run as a script -------------------------------------------------

CLI_PROJECT = Path(__file__).parent / "cli_project"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``python backbone_classifier.py ...`` as its users run it: a backbone of size 7 that
    only ``lightning_logs/version_0/config.yaml`` records, as ``__main__.Backbone``."""
    root = tmp_path_factory.mktemp("cli")
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(24, 1, 3, 4, generator=generator)
    np.savez(root / "data.npz", x=x.numpy(), y=torch.randint(0, 3, (24,), generator=generator))
    subprocess.run(
        [
            sys.executable,
            str(CLI_PROJECT / "backbone_classifier.py"),
            f"--data.path={root / 'data.npz'}",
            f"--trainer.default_root_dir={root}",
            "--trainer.max_epochs=2",
            "--trainer.enable_progress_bar=false",
            "--model.backbone=Backbone",
            "--model.backbone.hidden_dim=7",
        ],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (ckpt,) = (root / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    return ckpt, x


def test_a_lightning_cli_run_with_an_ignored_backbone_predicts(cli_run, tmp_path, monkeypatch):
    ckpt, x = cli_run
    monkeypatch.syspath_prepend(str(CLI_PROJECT))  # the script, importable as its module
    np.save(tmp_path / "x.npy", x.numpy())
    manifest = predict_in_process(
        tmp_path,
        f"ckpt_path={ckpt}",
        "model._target_=backbone_classifier.LitClassifier",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
    )
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert state["backbone.l1.weight"].shape == (7, 12)  # the size only config.yaml holds
    hidden = torch.relu(
        x.reshape(24, -1) @ state["backbone.l1.weight"].T + state["backbone.l1.bias"]
    )
    expected = torch.relu(hidden @ state["backbone.l2.weight"].T + state["backbone.l2.bias"])
    np.testing.assert_allclose(np.load(tmp_path / "run" / "predictions.npy"), expected, atol=1e-6)
    assert manifest["config"]["training_run"]["kind"] == "lightning_cli"
    assert manifest["config"]["model"]["backbone"]["_target_"] == "backbone_classifier.Backbone"
    assert manifest["model_arguments"] == {
        "backbone": "training run config",
        "learning_rate": "checkpoint",
    }


def test_a_lightning_cli_run_without_its_class_says_what_to_type(cli_run, tmp_path):
    from litpredict.process.errors import CheckpointError

    ckpt, _ = cli_run
    with pytest.raises(CheckpointError, match="names no model class") as error:
        predict_in_process(
            tmp_path, f"ckpt_path={ckpt}", "datamodule=array_file", "datamodule.path=x.npy"
        )
    assert "model._target_=" in error.value.fix


def test_on_load_checkpoint_needing_a_pickled_entry_says_why_it_is_not_loaded(tmp_path):
    from failing_models import NeedsPickledEntry
    from litpredict.process.errors import CheckpointError

    model = NeedsPickledEntry(input_dim=10, output_dim=1)
    ckpt = tmp_path / "deepar_like.ckpt"
    hyper_parameters = {"input_dim": 10, "output_dim": 1, "loss_fn": torch.nn.MSELoss()}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper_parameters}, ckpt)
    with pytest.raises(CheckpointError) as error:
        predict_in_process(
            tmp_path,
            f"ckpt_path={ckpt}",
            "model=linear",
            "model._target_=failing_models.NeedsPickledEntry",
        )
    assert "on_load_checkpoint failed" in error.value.message
    assert "only as pickled objects (loss_fn)" in error.value.message
    assert "never loads" in error.value.message
