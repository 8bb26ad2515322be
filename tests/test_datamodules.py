"""Users' own data (issue #15): any datamodule from the command line or their own config
group, image folders flat or by class with channels, resizing, normalization and
transforms, iterable datasets and string outputs refused with what to do, torchmetrics
metrics from a list. Every prediction is checked against an oracle computed by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv
import pyarrow.parquet
import pytest
import torch
from PIL import Image

from conftest import (
    compose_predict,
    plain_lightning_checkpoint,
    predict_in_process,
    read_manifest,
    run_cli,
)

pytest.importorskip("lightning")

from litpredict.process.errors import UserError
from test_lightning_packages import oracle

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A regressor on each Lightning package, a string-returning model, two ResNets."""
    import classic_models
    import datamodule_models
    import unified_models

    root = tmp_path_factory.mktemp("datamodule_checkpoints")
    x, y = datamodule_models.table(32, seed=0)
    torch.manual_seed(0)
    made = {
        "classic": (classic_models.Regressor(), x, y),
        "unified": (unified_models.Regressor(), x, y),
        "labels": (datamodule_models.LabelsBeside(), x, y),
    }
    images = torch.rand(8, 3, 32, 32)
    classes = torch.tensor([0, 1] * 4)
    made["resnet_rgb"] = (datamodule_models.ResNetClassifier(num_classes=2), images, classes)
    gray = datamodule_models.ResNetClassifier(num_classes=3, in_channels=1)
    made["resnet_gray"] = (gray, images[:, :1], torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    paths = {}
    for name, (model, inputs, targets) in made.items():
        paths[name] = root / f"{name}.ckpt"
        plain_lightning_checkpoint(model, inputs, targets, paths[name])
    return paths


def resnet(checkpoint: Path, **init):
    from datamodule_models import ResNetClassifier

    model = ResNetClassifier(**init)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict(state)
    return model.eval()


def test_a_user_datamodule_on_the_command_line_gets_only_its_own_keys(checkpoints, tmp_path):
    """The demo group's seed, n_train, batch_size... would reach ``**kwargs`` otherwise."""
    from datamodule_models import table
    from litpredict.data.build import build_datamodule

    overrides = [
        f"ckpt_path={checkpoints['classic']}",
        "model._target_=classic_models.Regressor",
        "datamodule._target_=datamodule_models.ClassicData",
        "+datamodule.n=21",
    ]
    built = build_datamodule(compose_predict(*overrides, run_dir=tmp_path / "composed"))
    assert (built.n, built.seed, built.extra) == (21, 1, {})
    again = build_datamodule(
        compose_predict(*overrides, "datamodule.seed=4", run_dir=tmp_path / "composed")
    )
    assert (again.seed, again.extra) == (4, {})  # a group key set again does reach it

    manifest = predict_in_process(tmp_path, *overrides)
    x, y = table(21, seed=1)
    expected = oracle(checkpoints["classic"], x)
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-6)
    assert manifest["datamodule"] == {"class": "datamodule_models.ClassicData", "num_samples": 21}
    assert manifest["data"] == []
    mse = float(np.mean((expected.astype(np.float64) - y.numpy()) ** 2))
    assert manifest["metrics"]["mse"] == pytest.approx(mse, rel=1e-5)


def test_an_unknown_key_for_a_user_datamodule_is_refused_by_name(checkpoints, tmp_path):
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            f"ckpt_path={checkpoints['unified']}",
            "model._target_=unified_models.Regressor",
            "datamodule._target_=datamodule_models.DescribedData",
            "+datamodule.path=x.pt",
            "+datamodule.colour=red",
        )
    assert "colour" in caught.value.problem and "datamodule" in caught.value.fix


def test_the_protocol_fingerprints_inputs_and_names_rows_with_chosen_metrics(checkpoints, tmp_path):
    """A ``lightning`` datamodule with input_files and sample_ids; csv; four metrics."""
    x = torch.randn(19, 10, generator=torch.Generator().manual_seed(3))
    torch.save(x, tmp_path / "x.pt")
    manifest = predict_in_process(
        tmp_path,
        f"ckpt_path={checkpoints['unified']}",
        "model._target_=unified_models.Regressor",
        "datamodule._target_=datamodule_models.DescribedData",
        f"+datamodule.path={tmp_path / 'x.pt'}",
        "writer=csv",
        "metrics=[mse,mae,rmse,r2]",
    )
    table = pyarrow.csv.read_csv(tmp_path / "run" / "predictions.csv")
    assert table.column("id").to_pylist() == [f"row-{i}" for i in range(19)]
    expected = oracle(checkpoints["unified"], x).astype(np.float64)
    np.testing.assert_allclose(table.column("prediction_0").to_numpy(), expected[:, 0], rtol=1e-5)
    assert [entry["path"] for entry in manifest["data"]] == [str(tmp_path / "x.pt")]
    assert manifest["datamodule"]["num_samples"] == 19
    diff = expected - x.sum(dim=1, keepdim=True).numpy().astype(np.float64)
    target = x.sum(dim=1).numpy().astype(np.float64)
    by_hand = {
        "mse": np.mean(diff**2),
        "mae": np.mean(np.abs(diff)),
        "rmse": np.sqrt(np.mean(diff**2)),
        "r2": 1 - np.sum(diff**2) / np.sum((target - target.mean()) ** 2),
    }
    assert manifest["metrics"] == pytest.approx(by_hand, rel=1e-4)


def test_a_lightning_datamodule_feeds_a_pytorch_lightning_model(checkpoints, tmp_path):
    """The adapter's other direction: ``import lightning`` data, a ``pytorch_lightning``
    model and so its Trainer; the protocols still reach the manifest and the ids."""
    from datamodule_models import DescribedData
    from litpredict.trainer.lightning_api import PYTORCH_LIGHTNING, api

    x = torch.randn(13, 10, generator=torch.Generator().manual_seed(5))
    torch.save(x, tmp_path / "x.pt")
    data = DescribedData(str(tmp_path / "x.pt"))
    assert api(PYTORCH_LIGHTNING).datamodule(data) is not data  # wrapped for that Trainer
    manifest = predict_in_process(
        tmp_path,
        f"ckpt_path={checkpoints['classic']}",
        "model._target_=classic_models.Regressor",
        "datamodule._target_=datamodule_models.DescribedData",
        f"+datamodule.path={tmp_path / 'x.pt'}",
        "datamodule.batch_size=4",  # a loader key of the replaced group, set again
        "writer=csv",
    )
    table = pyarrow.csv.read_csv(tmp_path / "run" / "predictions.csv")
    assert table.column("id").to_pylist() == [f"row-{i}" for i in range(13)]
    expected = oracle(checkpoints["classic"], x)
    np.testing.assert_allclose(table.column("prediction_0").to_numpy(), expected[:, 0], rtol=1e-5)
    assert manifest["datamodule"] == {"class": "datamodule_models.DescribedData", "num_samples": 13}
    assert [entry["path"] for entry in manifest["data"]] == [str(tmp_path / "x.pt")]


def test_a_users_own_datamodule_group_through_the_search_path(checkpoints, tmp_path):
    from datamodule_models import table

    (tmp_path / "myconf" / "datamodule").mkdir(parents=True)
    (tmp_path / "myconf" / "datamodule" / "mine.yaml").write_text(
        "_target_: datamodule_models.ClassicData\nn: 13\nseed: 5\n"
    )
    manifest = predict_in_process(
        tmp_path,
        f"hydra.searchpath=[file://{tmp_path / 'myconf'}]",
        "datamodule=mine",
        f"ckpt_path={checkpoints['classic']}",
        "model._target_=classic_models.Regressor",
    )
    expected = oracle(checkpoints["classic"], table(13, seed=5)[0])
    np.testing.assert_allclose(
        np.load(tmp_path / "run" / "predictions.npy"), expected, rtol=1e-5, atol=1e-6
    )
    assert manifest["datamodule"]["class"] == "datamodule_models.ClassicData"


def gray_images(folder: Path, n: int = 5) -> list[Path]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        paths.append(folder / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(paths[-1])
    return paths


def test_a_flat_folder_read_grayscale_resized_transformed_and_normalized(checkpoints, tmp_path):
    """Unlabelled images: batches are the images alone, and there are no metrics."""
    from torchvision.transforms.v2 import functional as F

    paths = gray_images(tmp_path / "flat")
    manifest = predict_in_process(
        tmp_path,
        f"ckpt_path={checkpoints['resnet_gray']}",
        "model._target_=datamodule_models.ResNetClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'flat'}",
        "datamodule.num_workers=0",
        "datamodule.channels=1",
        "datamodule.image_size=[36,36]",
        "datamodule.transforms=[{_target_:torchvision.transforms.v2.CenterCrop,size:32}]",
        "datamodule.mean=[0.5]",
        "datamodule.std=[0.25]",
        "writer=parquet",
    )
    by_hand = []
    for path in paths:
        gray = np.array(Image.open(path).convert("L"))
        pixels = torch.from_numpy(gray)[None]
        pixels = F.resize(pixels, [36, 36], antialias=True).float() / 255
        by_hand.append((F.center_crop(pixels, [32, 32]) - 0.5) / 0.25)
    with torch.no_grad():
        expected = resnet(checkpoints["resnet_gray"], num_classes=3, in_channels=1)(
            torch.stack(by_hand)
        )
    table = pyarrow.parquet.read_table(tmp_path / "run" / "predictions.parquet")
    assert table.column("id").to_pylist() == [str(p) for p in paths]
    got = np.stack([table.column(f"prediction_{j}").to_numpy() for j in range(3)], axis=1)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert manifest["metrics"] == {}


def test_a_resnet_with_imagenet_statistics_on_class_folders_with_f1(checkpoints, tmp_path):
    """The README's example: a torchvision ResNet module, ImageNet mean and std."""
    from torchvision.transforms.v2 import functional as F

    rng = np.random.default_rng(3)
    for label in ("cat", "dog"):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / label / f"{i}.jpg")
    manifest = predict_in_process(
        tmp_path,
        f"ckpt_path={checkpoints['resnet_rgb']}",
        "model._target_=datamodule_models.ResNetClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'pets'}",
        "datamodule.num_workers=0",
        "datamodule.image_size=36",
        "datamodule.transforms=[{_target_:torchvision.transforms.v2.CenterCrop,size:32}]",
        f"datamodule.mean={IMAGENET_MEAN}".replace(" ", ""),
        f"datamodule.std={IMAGENET_STD}".replace(" ", ""),
        "metrics=[accuracy,f1]",
    )
    ids = (tmp_path / "run" / "ids.txt").read_text().splitlines()
    labels = np.array([0 if "/cat/" in i else 1 for i in ids])
    mean = torch.tensor(IMAGENET_MEAN).reshape(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(3, 1, 1)
    by_hand = []
    for path in ids:
        pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        pixels = F.resize(pixels, [36, 36], antialias=True).float() / 255
        by_hand.append((F.center_crop(pixels, [32, 32]) - mean) / std)
    with torch.no_grad():
        expected = resnet(checkpoints["resnet_rgb"], num_classes=2)(torch.stack(by_hand))
    predicted = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predicted, expected.numpy(), rtol=1e-4, atol=1e-5)
    classes = predicted.argmax(axis=1)
    f1s = []
    for c in (0, 1):
        tp = np.sum((classes == c) & (labels == c))
        fp, fn = np.sum((classes == c) & (labels != c)), np.sum((classes != c) & (labels == c))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    assert manifest["metrics"] == pytest.approx(
        {"accuracy": float(np.mean(classes == labels)), "f1": float(np.mean(f1s))}
    )


LHT_CONFIGS = Path(__file__).resolve().parent / "lht_style" / "configs"
MNIST = [  # LHT's MNIST module with a dense net on 28x28 grayscale: it takes no other size
    f"hydra.searchpath=[file://{LHT_CONFIGS}]",
    "model=mnist",
    "model.net.input_size=784",
    "model.net.output_size=10",
    "datamodule=image_folder",
    "datamodule.channels=1",
    "datamodule.num_workers=0",
    "datamodule.batch_size=64",  # one batch, as the oracle's
]


@pytest.fixture(scope="module")
def mnist_checkpoint(tmp_path_factory) -> Path:
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader, TensorDataset

    root = tmp_path_factory.mktemp("mnist")
    config = OmegaConf.load(LHT_CONFIGS / "model" / "mnist.yaml")
    config.net.input_size, config.net.output_size = 784, 10
    model = instantiate(config)
    generator = torch.Generator().manual_seed(4)
    data = TensorDataset(torch.rand(16, 1, 28, 28, generator=generator), torch.arange(16) % 10)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    trainer.fit(model, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    trainer.save_checkpoint(root / "mnist.ckpt")
    return root / "mnist.ckpt"


def mnist_oracle(checkpoint: Path, images: torch.Tensor) -> np.ndarray:
    """The dense net built by hand from the checkpoint's weights, on (N, 1, 28, 28) images."""
    from lht_style.simple_dense_net import SimpleDenseNet

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    net = SimpleDenseNet(input_size=784, lin1_size=8, lin2_size=8, lin3_size=8, output_size=10)
    net.load_state_dict({k[len("net.") :]: v for k, v in state.items()})
    with torch.no_grad():
        return net.eval()(images).numpy()


def scans(folder: Path, sizes: list[tuple[int, int]], seed: int = 8) -> list[Path]:
    """Grayscale PNGs of the given (H, W) sizes, named in order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (height, width) in enumerate(sizes):
        paths.append(folder / f"{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(paths[-1])
    return paths


def pixels(path: Path) -> torch.Tensor:
    """A grayscale file as a (1, H, W) uint8 tensor."""
    return torch.from_numpy(np.array(Image.open(path).convert("L")))[None]


def test_28x28_scans_are_predicted_at_their_own_size(mnist_checkpoint, tmp_path):
    """No image_size: the files' size, 28x28, reaches a model that takes nothing else."""
    paths = scans(tmp_path / "scans", [(28, 28)] * 6)
    manifest = predict_in_process(
        tmp_path, *MNIST, f"datamodule.root={tmp_path / 'scans'}", f"ckpt_path={mnist_checkpoint}"
    )
    images = torch.stack([pixels(p).float() / 255 for p in paths])
    expected = mnist_oracle(mnist_checkpoint, images)
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "predictions.npy"), expected)
    assert manifest["config"]["datamodule"]["image_size"] is None


def test_image_size_resizes_as_before(mnist_checkpoint, tmp_path):
    """``image_size`` set: every image resized (antialiased, from uint8), bit for bit."""
    from torchvision.transforms.v2 import functional as F

    paths = scans(tmp_path / "scans", [(32, 32), (30, 40), (64, 20)])
    predict_in_process(
        tmp_path,
        *MNIST,
        f"datamodule.root={tmp_path / 'scans'}",
        "datamodule.image_size=28",
        f"ckpt_path={mnist_checkpoint}",
    )
    images = torch.stack([F.resize(pixels(p), [28, 28], antialias=True) / 255 for p in paths])
    expected = mnist_oracle(mnist_checkpoint, images.float())
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "predictions.npy"), expected)


def test_images_of_different_sizes_without_image_size_stop_before_predicting(
    mnist_checkpoint, tmp_path
):
    scans(tmp_path / "scans" / "a", [(28, 28)] * 3)
    scans(tmp_path / "scans" / "b", [(32, 32), (30, 40)])
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            *MNIST,
            f"datamodule.root={tmp_path / 'scans'}",
            f"ckpt_path={mnist_checkpoint}",
        )
    problem, fix = caught.value.problem, caught.value.fix
    assert "differ in size ([H, W]): [28, 28] in 3 file(s), e.g. a/00.png" in problem
    assert "[32, 32] in 1 file(s), e.g. b/00.png" in problem
    assert "[30, 40] in 1 file(s), e.g. b/01.png" in problem
    assert "datamodule.image_size=H (a square) or [H, W]" in fix
    assert "datamodule.image_size=28" in fix
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "failed" and "differ in size" in manifest["error"]
    assert not list((tmp_path / "run").rglob("prediction*"))


def test_transforms_that_make_sizes_equal_need_no_image_size(tmp_path):
    from torchvision.transforms.v2 import CenterCrop

    from litpredict.data import ImageFolderDataset

    scans(tmp_path / "flat", [(28, 28), (32, 40), (30, 30)])
    dataset = ImageFolderDataset(tmp_path / "flat", channels=1, transforms=[CenterCrop(24)])
    assert {tuple(dataset[i].shape) for i in range(3)} == {(1, 24, 24)}
    with pytest.raises(UserError) as caught:
        ImageFolderDataset(tmp_path / "flat", channels=1, transforms=[torch.nn.Identity()])
    assert "datamodule.transforms do not make them equal" in caught.value.problem


def test_an_unreadable_image_is_named_when_sizes_are_read(tmp_path):
    """Before predicting: the header of each file is read to compare the sizes."""
    from litpredict.data import ImageFolderDataset

    scans(tmp_path / "flat", [(28, 28)])
    (tmp_path / "flat" / "zz.png").write_bytes(b"not an image")
    with pytest.raises(UserError) as caught:
        ImageFolderDataset(tmp_path / "flat")
    bad = tmp_path / "flat" / "zz.png"
    assert caught.value.problem.startswith(f"cannot read the image '{bad}'")


def test_a_folder_of_images_and_subfolders_is_refused(tmp_path):
    from litpredict.data import ImageFolderDataset

    gray_images(tmp_path / "mixed" / "cats", n=1)
    Image.new("RGB", (4, 4)).save(tmp_path / "mixed" / "loose.png")
    with pytest.raises(UserError) as caught:
        ImageFolderDataset(tmp_path / "mixed")
    assert "both images and subfolders" in caught.value.problem


def test_a_transform_that_is_not_torchvision_nor_torch_is_refused(tmp_path):
    from litpredict.data import ImageFolderDataset

    gray_images(tmp_path / "flat", n=1)
    with pytest.raises(UserError) as caught:
        ImageFolderDataset(tmp_path / "flat", transforms=[print])
    assert "transforms[0]" in caught.value.problem and "_target_" in caught.value.fix


def test_an_iterable_dataset_is_refused_with_what_to_do(checkpoints, tmp_path):
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            f"ckpt_path={checkpoints['classic']}",
            "model._target_=classic_models.Regressor",
            "datamodule._target_=datamodule_models.StreamData",
        )
    assert "IterableDataset" in caught.value.problem and "map-style" in caught.value.fix
    assert read_manifest(tmp_path / "run")["status"] == "failed"


def test_strings_beside_tensors_are_refused_with_what_to_return(checkpoints, tmp_path):
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            f"ckpt_path={checkpoints['labels']}",
            "model._target_=datamodule_models.LabelsBeside",
            "datamodule._target_=datamodule_models.ClassicData",
        )
    assert "'label'" in caught.value.problem and "sample_ids" in caught.value.fix


def test_an_unknown_metric_is_refused_before_predicting(checkpoints, tmp_path):
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            f"ckpt_path={checkpoints['classic']}",
            "model._target_=classic_models.Regressor",
            "metrics=[mse,bogus]",
        )
    assert "bogus" in caught.value.problem
    assert not (tmp_path / "run" / "predictions.npy").exists()


def _regressor_on(tmp_path: Path, checkpoints, labels: np.ndarray, *more: str) -> dict:
    """The 10 -> 1 regressor predicting 13 rows of :func:`features` with ``labels`` as targets."""
    x, _ = features()
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "labels.npy", labels)
    return predict_in_process(
        tmp_path,
        f"ckpt_path={checkpoints['classic']}",
        "model._target_=classic_models.Regressor",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'labels.npy'}",
        "datamodule.batch_size=4",
        *more,
    )


def features() -> tuple[torch.Tensor, torch.Tensor]:
    """13 rows of 10 features and their sum (the regressor's target)."""
    from datamodule_models import table

    return table(13, seed=2)


def test_class_labels_beside_a_regressor_give_no_default_metric(checkpoints, tmp_path, caplog):
    """Labels that are not the model's targets: no ``accuracy`` of an (N, 1) output."""
    labels = np.arange(13) % 3
    with caplog.at_level("INFO", logger="litpredict"):
        manifest = _regressor_on(tmp_path, checkpoints, labels)
    assert manifest["status"] == "complete" and manifest["metrics"] == {}
    line = "no label metrics: labels of shape (N,) do not fit outputs of shape (N, 1)"
    assert line in caplog.text


def test_a_named_metric_that_does_not_fit_stops_the_run_at_its_first_batch(checkpoints, tmp_path):
    """The features as labels (an autoencoder's): ``accuracy`` is refused before predicting on."""
    x, _ = features()
    with pytest.raises(UserError) as caught:
        _regressor_on(tmp_path, checkpoints, x.numpy(), "metrics=[accuracy]")
    assert "labels of shape (N, 10) do not fit outputs of shape (N, 1)" in caught.value.problem
    assert "metrics=[]" in caught.value.fix
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "failed" and "do not fit" in manifest["error"]
    assert not list((tmp_path / "run").rglob("prediction*"))  # not a row was written


def test_metrics_empty_list_through_hydra_means_none(checkpoints, tmp_path):
    _, y = features()
    assert list(compose_predict("metrics=[]", run_dir=tmp_path / "composed").metrics) == []
    manifest = _regressor_on(tmp_path, checkpoints, y.numpy(), "metrics=[]")
    assert manifest["status"] == "complete" and manifest["metrics"] == {}
    again = _regressor_on(tmp_path, checkpoints, y.numpy(), f"hydra.run.dir={tmp_path / 'dflt'}")
    assert sorted(again["metrics"]) == ["mae", "mse"]  # the same labels fit the defaults


@pytest.mark.slow
def test_the_command_line_takes_a_user_datamodule_and_its_keys(checkpoints, tmp_path):
    """The override form a user types, through the real CLI."""
    from datamodule_models import table

    run_cli(
        "predict",
        f"ckpt_path={checkpoints['classic']}",
        "model._target_=classic_models.Regressor",
        "datamodule._target_=datamodule_models.ClassicData",
        "+datamodule.n=9",
        f"hydra.run.dir={tmp_path / 'cli'}",
        cwd=tmp_path,
    )
    expected = oracle(checkpoints["classic"], table(9, seed=1)[0])
    np.testing.assert_allclose(
        np.load(tmp_path / "cli" / "predictions.npy"), expected, rtol=1e-5, atol=1e-6
    )
    assert read_manifest(tmp_path / "cli")["datamodule"]["num_samples"] == 9
