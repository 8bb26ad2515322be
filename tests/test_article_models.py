"""The seed article's models, trained with plain Lightning, predict through configuration alone."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from article_models import ImageClassifier, LinearRegressionModel, LSTMModel
from conftest import read_manifest, run_cli

pytestmark = pytest.mark.slow


def plain_lightning_checkpoint(model: pl.LightningModule, x, y, path) -> None:
    """What an article reader does: fit briefly, save a checkpoint. No litpredict involved."""
    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=path.parent,
    )
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    trainer.save_checkpoint(path)


def test_article_linear_model_from_npy_files(tmp_path) -> None:
    x = torch.randn(257, 10)
    y = x.sum(dim=1, keepdim=True)
    model = LinearRegressionModel(10, 1)
    plain_lightning_checkpoint(model, x, y, tmp_path / "linear.ckpt")
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        "model._target_=article_models.LinearRegressionModel",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={tmp_path / 'linear.ckpt'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(np.load(run_dir / "predictions.npy"), expected, rtol=1e-5, atol=1e-6)
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete" and "mse" in manifest["metrics"]


def write_image_folder(root, n_per_class: int = 5) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i:03d}.png")


def test_article_image_classifier_from_an_image_folder(tmp_path) -> None:
    model = ImageClassifier()
    plain_lightning_checkpoint(
        model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)), tmp_path / "cnn.ckpt"
    )
    write_image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        "model=cnn",
        "model._target_=article_models.ImageClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'images'}",
        "datamodule.num_workers=0",
        f"ckpt_path={tmp_path / 'cnn.ckpt'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    ids = (run_dir / "ids.txt").read_text().splitlines()
    assert ids == sorted(str(p) for p in (tmp_path / "images").rglob("*.png"))
    images = torch.stack(
        [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255 for p in ids]
    )
    with torch.no_grad():
        expected = model.eval()(images).argmax(dim=1).numpy()
    np.testing.assert_array_equal(np.load(run_dir / "predictions.npy"), expected)
    assert "accuracy" in read_manifest(run_dir)["metrics"]


def test_article_lstm_through_its_own_config_group(tmp_path) -> None:
    """The user's own model group, found through hydra.searchpath."""
    x = torch.randn(40, 20, 5)
    y = torch.randn(40, 20, 3)
    model = LSTMModel(5, 16, 3)
    plain_lightning_checkpoint(model, x, y, tmp_path / "lstm.ckpt")
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "model" / "article_lstm.yaml").write_text(
        "_target_: article_models.LSTMModel\ninput_dim: 5\nhidden_dim: 16\noutput_dim: 3\n"
    )
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        f"hydra.searchpath=[file://{tmp_path / 'myconf'}]",
        "model=article_lstm",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={tmp_path / 'lstm.ckpt'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    with torch.no_grad():
        expected, _ = model.eval()(x)
    predictions = np.load(run_dir / "predictions.npy")
    assert predictions.shape == (40, 20, 3)
    np.testing.assert_allclose(predictions, expected.numpy(), rtol=1e-5, atol=1e-6)
