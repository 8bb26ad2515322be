"""The data path: ``datamodule.decode=fast`` checked against exact decoding, exact decoding
unchanged bit for bit, and where a run's time went (the manifest's ``stages``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import plain_lightning_checkpoint, predict_in_process, read_manifest, run_cli
from data_path_models import ITEM_SLEEP_S, STEP_SLEEP_S, ChannelScores, PixelParity, SlowStep

STAGES = ("data_s", "model_s", "write_s")


def write_jpegs(root: Path, count: int, size: tuple[int, int] = (320, 240)) -> Path:
    """``root/images/*.jpg``: smooth, noisy photo-like JPEGs, each dominated by one colour
    (the class :class:`ChannelScores` gives it), the dominant colour varying."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = root / "images"
    folder.mkdir(parents=True)
    width, height = size
    for i in range(count):
        colour = np.full(3, 60.0)
        colour[i % 3] = 180.0
        coarse = colour + rng.normal(0, 25, size=(height // 16 + 2, width // 16 + 2, 3))
        smooth = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize(size)
        pixels = np.asarray(smooth, np.float32) + rng.normal(0, 6, size=(height, width, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            folder / f"{i:03d}.jpg", quality=90
        )
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Plain Lightning checkpoints of the test models, each fitted for 3 steps."""
    root = tmp_path_factory.mktemp("data_path")
    torch.manual_seed(0)
    images = torch.rand(8, 3, 8, 8)
    made = {
        "ChannelScores": (ChannelScores(), images, torch.rand(8, 3)),
        "PixelParity": (PixelParity(), images, torch.rand(8, 3)),
        "SlowStep": (SlowStep(), torch.randn(8, 10), torch.randn(8, 1)),
    }
    paths = {}
    for name, (model, x, y) in made.items():
        paths[name] = root / f"{name}.ckpt"
        plain_lightning_checkpoint(model, x, y, paths[name])
    return paths


def image_run(tmp_path, folder: Path, ckpt: Path, name: str, *overrides: str) -> dict:
    """An image-folder prediction in this process into ``tmp_path / name``."""
    return predict_in_process(
        tmp_path,
        f"model._target_=data_path_models.{ckpt.stem}",
        "datamodule=image_folder",
        f"datamodule.root={folder}",
        "datamodule.image_size=32",
        "datamodule.batch_size=8",
        "datamodule.num_workers=0",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={tmp_path / name}",
        *overrides,
    )


def predictions(tmp_path, name: str) -> np.ndarray:
    return np.load(tmp_path / name / "predictions.npy")


@pytest.mark.parametrize("channels", [3, 1])
def test_fast_decoding_is_checked_against_exact_and_recorded(
    checkpoints, tmp_path, channels
) -> None:
    """RGB: class scores, compared by class; grayscale: one value per image, compared by
    relative difference. Fast decodes other pixels, predicts the same, and says so."""
    folder = write_jpegs(tmp_path / "data", 12)
    ckpt = checkpoints["ChannelScores"]
    mode = f"datamodule.channels={channels}"
    exact = image_run(tmp_path, folder, ckpt, "exact", mode)
    fast = image_run(tmp_path, folder, ckpt, "fast", mode, "datamodule.decode=fast")
    assert "decode_check" not in exact
    check = fast["decode_check"]
    # the first batch (8 images) through both decodes; all of them agree
    assert {k: check[k] for k in ("images", "agreement", "threshold", "used")} == {
        "images": 8, "agreement": 1.0, "threshold": 0.98, "used": "fast",
    }  # fmt: skip
    assert check["seconds"] >= 0
    exact_out, fast_out = predictions(tmp_path, "exact"), predictions(tmp_path, "fast")
    assert not np.array_equal(exact_out, fast_out)  # decoded at a reduced size: other pixels
    if channels == 3:
        assert len(set(exact_out.argmax(axis=1))) == 3  # the classes vary: agreement means much
        np.testing.assert_array_equal(exact_out.argmax(axis=1), fast_out.argmax(axis=1))
    else:
        np.testing.assert_allclose(fast_out, exact_out, rtol=0.02)


def test_a_check_of_fewer_images_than_a_batch(checkpoints, tmp_path) -> None:
    folder = write_jpegs(tmp_path / "data", 12)
    fast = image_run(
        tmp_path, folder, checkpoints["ChannelScores"], "fast",
        "datamodule.decode=fast", "datamodule.decode_check_images=3",
    )  # fmt: skip
    assert fast["decode_check"]["images"] == 3


@pytest.mark.parametrize(
    ("model", "threshold"), [("ChannelScores", "1.01"), ("PixelParity", "0.98")]
)
def test_fast_falls_back_to_exact_below_the_threshold(
    checkpoints, tmp_path, caplog, model, threshold
) -> None:
    """A threshold no check can reach, or a model whose every class a grey level flips:
    the run decodes exactly (outputs equal to an exact run's, bit for bit) and warns."""
    folder = write_jpegs(tmp_path / "data", 12)
    ckpt = checkpoints[model]
    exact = image_run(tmp_path, folder, ckpt, "exact")
    with caplog.at_level(logging.WARNING, logger="litpredict"):
        fast = image_run(
            tmp_path, folder, ckpt, "fast",
            "datamodule.decode=fast", f"datamodule.decode_threshold={threshold}",
        )  # fmt: skip
    check = fast["decode_check"]
    assert check["used"] == "exact" and check["threshold"] == float(threshold)
    assert check["agreement"] < float(threshold)
    if model == "PixelParity":
        assert check["agreement"] < 0.9  # the fast pixels really do differ
    np.testing.assert_array_equal(predictions(tmp_path, "fast"), predictions(tmp_path, "exact"))
    hashes = [{o["path"]: o["sha256"] for o in run["outputs"]} for run in (exact, fast)]
    assert hashes[0] == hashes[1]
    warned = [r.getMessage() for r in caplog.records if r.name.startswith("litpredict.data")]
    assert any("decoding exactly instead" in line for line in warned), warned


def test_fast_without_an_image_size_decodes_exactly(checkpoints, tmp_path) -> None:
    folder = write_jpegs(tmp_path / "data", 4)
    ckpt = checkpoints["ChannelScores"]
    image_run(tmp_path, folder, ckpt, "exact", "datamodule.image_size=null")
    fast = image_run(
        tmp_path, folder, ckpt, "fast", "datamodule.image_size=null", "datamodule.decode=fast"
    )
    assert fast["decode_check"]["used"] == "exact" and fast["decode_check"]["images"] == 0
    np.testing.assert_array_equal(predictions(tmp_path, "fast"), predictions(tmp_path, "exact"))


def test_an_unknown_decode_names_the_choices(checkpoints, tmp_path) -> None:
    from litpredict.process.errors import DataError, user_error_in

    folder = write_jpegs(tmp_path / "data", 2)
    with pytest.raises(Exception) as raised:  # Hydra wraps the datamodule's error
        image_run(tmp_path, folder, checkpoints["ChannelScores"], "run", "datamodule.decode=quick")
    error = user_error_in(raised.value)
    assert isinstance(error, DataError)
    assert "datamodule.decode='quick'" in error.problem
    assert "decode=exact" in error.fix and "fast" in error.fix


# --- exact decoding: today's pixels, bit for bit ----------------------------------------------


def todays_pixels(path: Path, mode: str, shape: tuple[int, int] | None) -> torch.Tensor:
    """How litpredict read an image before ``datamodule.decode`` existed (d1b1237)."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor, resize

    with Image.open(path) as image:
        pixels = pil_to_tensor(image.convert(mode))
    if shape is not None and tuple(pixels.shape[1:]) != shape:
        pixels = resize(pixels, list(shape), antialias=True)
    return pixels.float().div_(255.0)


def mixed_folder(root: Path) -> Path:
    """RGB and grayscale JPEGs, RGB, RGBA and palette PNGs, all 40x52."""
    from PIL import Image

    rng = np.random.default_rng(3)
    (root / "a").mkdir(parents=True)
    pixels = rng.integers(0, 256, size=(6, 40, 52, 3), dtype=np.uint8)
    Image.fromarray(pixels[0]).save(root / "a" / "rgb.jpg", quality=80)
    Image.fromarray(pixels[1, ..., 0]).save(root / "a" / "gray.jpg", quality=80)
    Image.fromarray(pixels[2]).save(root / "a" / "rgb.png")
    Image.fromarray(np.dstack([pixels[3], pixels[4, ..., :1]])).save(root / "a" / "rgba.png")
    Image.fromarray(pixels[5]).convert("P").save(root / "a" / "palette.png")
    return root


@pytest.mark.parametrize("image_size", [None, 24, [20, 28]])
@pytest.mark.parametrize("channels", [1, 3])
def test_exact_decoding_gives_todays_pixels(tmp_path, channels, image_size) -> None:
    from litpredict.data import ImageFolderDataset
    from litpredict.data.image_options import MODES, image_shape

    root = mixed_folder(tmp_path)
    dataset = ImageFolderDataset(root, image_size=image_size, channels=channels)
    assert dataset.fast is False  # the default, also when predicting without decode=fast
    for index, (path, _) in enumerate(dataset.samples):
        expected = todays_pixels(path, MODES[channels], image_shape(image_size))
        assert torch.equal(dataset[index][0], expected), path.name


def test_a_default_run_predicts_on_todays_pixels(checkpoints, tmp_path) -> None:
    """No ``datamodule.decode`` given: predictions are the model's on today's pixels."""
    folder = write_jpegs(tmp_path / "data", 12)
    ckpt = checkpoints["ChannelScores"]
    image_run(tmp_path, folder, ckpt, "run")
    model = ChannelScores.load_from_checkpoint(ckpt, map_location="cpu").eval()
    files = sorted((folder / "images").glob("*.jpg"))
    with torch.inference_mode():
        expected = torch.cat([
            model(torch.stack([todays_pixels(p, "RGB", (32, 32)) for p in files[i : i + 8]]))
            for i in range(0, len(files), 8)
        ])  # fmt: skip
    np.testing.assert_array_equal(predictions(tmp_path, "run"), expected.numpy())


# --- where the time went -------------------------------------------------------------------


def assert_plausible(stages: dict, duration_s: float) -> None:
    assert set(stages) == set(STAGES)
    assert all(stages[k] >= 0 for k in STAGES), stages
    assert sum(stages.values()) <= duration_s, (stages, duration_s)


def test_stages_say_where_the_time_went(checkpoints, tmp_path) -> None:
    """30 items fetched at 20 ms each, 3 batches at 100 ms each in predict_step: the
    waiting is data_s, the stepping model_s, each where it belongs."""
    manifest = predict_in_process(
        tmp_path,
        "model._target_=data_path_models.SlowStep",
        "datamodule._target_=data_path_models.SlowData",
        "+datamodule.n=30",
        "datamodule.batch_size=10",
        f"ckpt_path={checkpoints['SlowStep']}",
    )
    stages = manifest["stages"]
    assert_plausible(stages, manifest["duration_s"])
    assert stages["data_s"] >= 30 * ITEM_SLEEP_S
    assert stages["model_s"] >= 3 * STEP_SLEEP_S
    assert stages["model_s"] < 30 * ITEM_SLEEP_S  # the fetching is not counted as model
    assert stages["data_s"] < 30 * ITEM_SLEEP_S + 3 * STEP_SLEEP_S  # nor the model as data
    assert 0 < stages["write_s"] < 0.5
    assert "stages_per_rank" not in manifest


def test_a_sweep_summary_has_a_column_per_stage(checkpoints, tmp_path) -> None:
    """A sweep's job directory holds a real run's manifest; its summary row shows stages."""
    from litpredict.sweep.summary import collect, write_files

    folder = write_jpegs(tmp_path / "data", 4)
    manifest = image_run(tmp_path, folder, checkpoints["ChannelScores"], "sweep/0")
    rows = collect(tmp_path / "sweep")
    write_files(tmp_path / "sweep", rows, plot=False)
    with open(tmp_path / "sweep" / "summary.csv") as table:
        (row,) = list(csv.DictReader(table))
    assert {k: float(row[k]) for k in STAGES} == manifest["stages"]


def test_the_result_line_says_where_a_long_loop_went() -> None:
    from litpredict.process.console import result_line

    long = {"data_s": 30.1, "model_s": 10.8, "write_s": 0.3}
    result = {"num_predictions": 1000, "metrics": {}, "duration_s": 44.0, "stages": long}
    assert result_line(result, "run") == (
        "1000 predictions; 44.0 s: waiting for data 30.1 s, model 10.8 s, writing 0.3 s -> run"
    )
    short = {**result, "stages": {"data_s": 0.1, "model_s": 1.0, "write_s": 0.01}}
    assert result_line(short, "run") == "1000 predictions -> run"
    assert result_line({**result, "stages": None}, "run") == "1000 predictions -> run"


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_decides_on_rank_0_and_times_every_rank(checkpoints, tmp_path) -> None:
    """Two ranks: rank 0's decision (fast) is every rank's, so the outputs equal a single
    process's fast run; stages are rank 0's, and every rank's in stages_per_rank."""
    folder = write_jpegs(tmp_path / "data", 12)
    ckpt = checkpoints["ChannelScores"]
    image_run(tmp_path, folder, ckpt, "single", "datamodule.decode=fast")
    run_cli(
        "predict",
        "model._target_=data_path_models.ChannelScores",
        "datamodule=image_folder",
        f"datamodule.root={folder}",
        "datamodule.image_size=32",
        "datamodule.batch_size=4",
        "datamodule.num_workers=0",
        "datamodule.decode=fast",
        "trainer=ddp_cpu",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={tmp_path / 'ddp'}",
        cwd=tmp_path,
    )
    manifest = read_manifest(tmp_path / "ddp")
    assert manifest["world_size"] == 2
    assert manifest["decode_check"]["used"] == "fast"
    assert manifest["decode_check"]["images"] == 4  # a batch of the dataset's first images
    np.testing.assert_allclose(
        predictions(tmp_path, "ddp"), predictions(tmp_path, "single"), rtol=1e-6
    )
    assert_plausible(manifest["stages"], manifest["duration_s"])
    per_rank = manifest["stages_per_rank"]
    assert [r["rank"] for r in per_rank] == [0, 1]
    assert {k: per_rank[0][k] for k in STAGES} == manifest["stages"]
    for rank in per_rank:
        assert_plausible({k: rank[k] for k in STAGES}, manifest["duration_s"])
