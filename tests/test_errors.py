"""Bad input ends with a short message naming problem and fix, a non-zero exit, and no
traceback on stderr; nothing is ever marked complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from test_article_models import plain_lightning_checkpoint

pytestmark = pytest.mark.slow


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def bad(tmp_path_factory, trained):
    """A folder of bad inputs, and a good linear checkpoint to pair them with."""
    root = tmp_path_factory.mktemp("bad")
    good = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    (root / "empty.ckpt").write_bytes(b"")
    (root / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "truncated.ckpt").write_bytes(good.read_bytes()[:3000])
    (root / "a_directory.ckpt").mkdir()
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"x": RunsCode(root / "PWNED")}},
        root / "pickled_code.ckpt",
    )
    calls = {"state_dict": torch.load(good, weights_only=True)["state_dict"]}
    calls["hyper_parameters"] = {"_target_": "os.system", "command": f"touch {root / 'CALLED'}"}
    torch.save(calls, root / "callable_hparams.ckpt")
    np.save(root / "x12.npy", np.zeros((8, 10 + 2), np.float32))
    np.save(root / "empty.npy", np.zeros((0, 10), np.float32))
    np.save(root / "x.npy", np.zeros((8, 10), np.float32))
    np.save(root / "y7.npy", np.zeros((7, 1), np.float32))
    (root / "a_file").write_text("")
    return root, good


def expect_failure(result, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 25, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    assert "weights_only=False" not in result.stderr


def not_complete(run_dir) -> None:
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        assert json.loads(manifest.read_text())["status"] in ("failed", "interrupted")
    assert not (run_dir / "predictions.npy").exists()


CASES = {
    "no ckpt_path": ([], "no checkpoint given"),
    "missing checkpoint": (["ckpt_path={root}/nope.ckpt"], "does not exist"),
    "checkpoint is a directory": (["ckpt_path={root}/a_directory.ckpt"], "is a directory"),
    "empty checkpoint": (["ckpt_path={root}/empty.ckpt"], "is empty (0 bytes)"),
    "truncated checkpoint": (["ckpt_path={root}/truncated.ckpt"], "truncated or corrupt"),
    "random bytes": (["ckpt_path={root}/random.ckpt"], "is not a PyTorch checkpoint"),
    "pickled code": (
        ["ckpt_path={root}/pickled_code.ckpt"],
        "pickled Python object (posix.system)",
    ),
    "hparams name a callable": (
        ["ckpt_path={root}/callable_hparams.ckpt"],
        "takes no arguments ['command']",
    ),
    "model is not a LightningModule": (
        ["ckpt_path={good}", "model._target_=os.system"],
        "not a pytorch_lightning.LightningModule",
    ),
    "contradicting hparams": (
        ["ckpt_path={good}", "model.output_dim=3"],
        "output_dim: checkpoint=1 config=3",
    ),
    "missing data file": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/nope.npy"],
        "the data file",
    ),
    "wrong number of features": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/x12.npy"],
        "does not fit the model",
    ),
    "empty dataset": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/empty.npy"],
        "dataset is empty",
    ),
    "labels of the wrong shape": (
        [
            "ckpt_path={good}",
            "datamodule=array_file",
            "datamodule.path={root}/x.npy",
            "datamodule.target_path={root}/y7.npy",
        ],
        "the targets have 7 rows but the features have 8",
    ),
    "typo in an override": (
        ["ckpt_path={good}", "trainer.devicez=2"],
        "Could not override 'trainer.devicez'",
    ),
    "unknown group choice": (["ckpt_path={good}", "model=resnet"], "Could not find 'model/resnet'"),
    "unknown data hash": (["ckpt_path={good}", "data_hash=md4"], "unknown data_hash 'md4'"),
    "unwritable output directory": (
        ["ckpt_path={good}", "hydra.run.dir={root}/a_file/run"],
        "cannot be written",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_reported_and_nothing_completes(case, bad, tmp_path) -> None:
    root, good = bad
    overrides, phrase = CASES[case]
    overrides = [o.format(root=root, good=good) for o in overrides]
    if not any(o.startswith("hydra.run.dir") for o in overrides):
        overrides.append(f"hydra.run.dir={tmp_path / 'run'}")
    expect_failure(run_cli("predict", *overrides, cwd=tmp_path, check=False), phrase)
    not_complete(tmp_path / "run")
    assert not (root / "PWNED").exists() and not (root / "CALLED").exists()


def test_checkpoint_of_another_architecture_names_keys_and_shapes(tmp_path) -> None:
    from article_models import LSTMModel

    plain_lightning_checkpoint(
        LSTMModel(5, 16, 3), torch.randn(8, 20, 5), torch.randn(8, 20, 3), tmp_path / "lstm.ckpt"
    )
    np.save(tmp_path / "x.npy", np.zeros((4, 20, 5), np.float32))
    result = run_cli(
        "predict",
        "model=lstm",
        "model._target_=article_models.LSTMModel",
        "+model.input_dim=5",
        "+model.hidden_dim=32",
        "+model.output_dim=3",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"ckpt_path={tmp_path / 'lstm.ckpt'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        check=False,
    )
    expect_failure(result, "lstm.weight_ih_l0: checkpoint (64, 5) vs model (128, 5)", "fix:")
    not_complete(tmp_path / "run")


def test_wrong_image_size_for_a_fixed_size_model(tmp_path) -> None:
    from article_models import ImageClassifier

    plain_lightning_checkpoint(
        ImageClassifier(),
        torch.randn(8, 3, 32, 32),
        torch.randint(0, 10, (8,)),
        tmp_path / "cnn.ckpt",
    )
    (tmp_path / "images" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images" / "a" / "big.png")
    result = run_cli(
        "predict",
        "model=cnn",
        "model._target_=article_models.ImageClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'images'}",
        "datamodule.image_size=null",
        "datamodule.num_workers=0",
        f"ckpt_path={tmp_path / 'cnn.ckpt'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        check=False,
    )
    expect_failure(result, "does not fit the model", "image_size")
    not_complete(tmp_path / "run")
