"""The seed article's models, trained with plain Lightning, predict through configuration alone.

The linear model goes through the real command; the other two run in-process
(``predict_in_process``), with the same config and code past Hydra's command line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import plain_lightning_checkpoint, predict_in_process, read_manifest, run_cli

pytestmark = pytest.mark.slow

__all__ = ["plain_lightning_checkpoint", "write_image_folder"]  # other tests import them here


def test_article_linear_model_from_npy_files(article_checkpoints, tmp_path) -> None:
    linear = article_checkpoints["linear"]
    np.save(tmp_path / "x.npy", linear.x.numpy())
    np.save(tmp_path / "y.npy", linear.y.numpy())
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        "model._target_=article_models.LinearRegressionModel",
        "model.input_dim=10",  # model=linear's defaults do not reach another class
        "model.output_dim=1",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={linear.path}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    with torch.no_grad():
        expected = linear.model(linear.x).numpy()
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


def test_article_image_classifier_from_an_image_folder(article_checkpoints, tmp_path) -> None:
    cnn = article_checkpoints["cnn"]
    write_image_folder(tmp_path / "images")
    run_dir = tmp_path / "run"
    manifest = predict_in_process(
        tmp_path,
        "model=cnn",
        "model._target_=article_models.ImageClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'images'}",
        "datamodule.num_workers=0",
        f"ckpt_path={cnn.path}",
    )
    ids = (run_dir / "ids.txt").read_text().splitlines()
    assert ids == sorted(str(p) for p in (tmp_path / "images").rglob("*.png"))
    images = torch.stack(
        [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255 for p in ids]
    )
    with torch.no_grad():
        expected = cnn.model(images).argmax(dim=1).numpy()
    np.testing.assert_array_equal(np.load(run_dir / "predictions.npy"), expected)
    assert "accuracy" in manifest["metrics"]


def test_the_image_classification_experiment_resizes_a_folder_to_its_32x32(
    article_checkpoints, tmp_path
) -> None:
    """``experiment=image_classification datamodule=image_folder``: images of other sizes
    are resized to the CNN's 32x32 (the experiment sets it), not refused for their sizes."""
    from torchvision.transforms.v2 import functional as F

    cnn = article_checkpoints["cnn"]
    rng = np.random.default_rng(1)
    for label, (height, width) in (("cat", (40, 40)), ("dog", (24, 30))):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{i}.png")
    manifest = predict_in_process(
        tmp_path,
        "experiment=image_classification",
        "model._target_=article_models.ImageClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'images'}",
        "datamodule.num_workers=0",
        f"ckpt_path={cnn.path}",
    )
    assert manifest["config"]["datamodule"]["image_size"] == 32
    ids = (tmp_path / "run" / "ids.txt").read_text().splitlines()
    images = torch.stack(
        [
            F.resize(torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1), [32, 32]) / 255
            for p in ids
        ]
    )
    with torch.no_grad():
        expected = cnn.model(images).argmax(dim=1).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "predictions.npy"), expected)


def test_article_lstm_through_its_own_config_group(article_checkpoints, tmp_path) -> None:
    """The user's own model group, found through hydra.searchpath."""
    lstm = article_checkpoints["lstm"]
    np.save(tmp_path / "x.npy", lstm.x.numpy())
    np.save(tmp_path / "y.npy", lstm.y.numpy())
    (tmp_path / "myconf" / "model").mkdir(parents=True)
    (tmp_path / "myconf" / "model" / "article_lstm.yaml").write_text(
        "_target_: article_models.LSTMModel\ninput_dim: 5\nhidden_dim: 16\noutput_dim: 3\n"
    )
    run_dir = tmp_path / "run"
    predict_in_process(
        tmp_path,
        f"hydra.searchpath=[file://{tmp_path / 'myconf'}]",
        "model=article_lstm",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={lstm.path}",
    )
    with torch.no_grad():
        expected, _ = lstm.model(lstm.x)
    predictions = np.load(run_dir / "predictions.npy")
    assert predictions.shape == (40, 20, 3)
    np.testing.assert_allclose(predictions, expected.numpy(), rtol=1e-5, atol=1e-6)
