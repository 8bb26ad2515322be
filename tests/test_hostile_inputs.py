"""Hostile and careless inputs on the write path and the data side (issue #14).

Each bad input ends in a :class:`UserError` with a problem and a fix, and nothing is
marked complete; ids round-trip exactly or are refused; a full disk is one message,
never a SIGBUS. In-process (``predict_in_process``) except where a crash is at stake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet
import pytest
import torch
from PIL import Image

from conftest import REPO, predict_in_process
from litpredict.models import LinearRegression
from litpredict.process.errors import UserError

pytestmark = pytest.mark.slow


# Models whose predict_step returns what a careless user's might.
class ReturnsEmptyTuple(LinearRegression):
    def predict_step(self, batch, batch_idx):
        return ()


class ReturnsEmptyDict(LinearRegression):
    def predict_step(self, batch, batch_idx):
        return {}


class ReturnsScalar(LinearRegression):
    def predict_step(self, batch, batch_idx):
        return self(batch[0] if isinstance(batch, (list, tuple)) else batch).mean()


class ReturnsIndexKey(LinearRegression):
    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return {"index": self(x), "y": self(x)}


class ReturnsIdKey(LinearRegression):
    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return {"id": self(x)}


class ReturnsCollidingKeys(LinearRegression):
    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        y = self(x)
        return {"a": torch.cat([y, y], dim=1), "a_1": y[:, 0]}  # a_0, a_1 and a_1


class ReturnsLongKey(LinearRegression):
    def predict_step(self, batch, batch_idx):
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return {"k" * 300: self(x)}


HERE = __name__  # how Hydra imports the models above


def image(path: Path, side: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side, 3), 7, np.uint8)).save(path, format="PNG")


def raw_name(folder: Path, name: bytes) -> Path:
    """A file ``name`` (raw bytes, maybe not UTF-8) under ``folder``, as Python sees it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = os.fsencode(folder) + b"/" + name
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(open(path, "wb"), format="PNG")  # noqa: SIM115
    return Path(os.fsdecode(path))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A folder of hostile inputs, one per case."""
    root = tmp_path_factory.mktemp("hostile")
    for name, bad in [
        ("newline", b"a\nb.png"),
        ("line_separator", "a\u2028b.png".encode()),
        ("next_line", "a\x85b.png".encode()),
        ("non_utf8", b"caf\xe9.png"),
    ]:
        image(root / name / "c" / "good.png")
        raw_name(root / name / "c", bad)
    image(root / "corrupt" / "c" / "good.png")
    (root / "corrupt" / "c" / "zz_bad.png").write_bytes(b"not an image at all")
    (root / "strings.csv").write_text("a,b,c,d,e,f,g,h,i,j\n" + "1,2,3,4,5,6,7,8,9,x\n" * 3)
    (root / "duplicate.csv").write_text("a,a,c,d,e,f,g,h,i,j\n" + "1,2,3,4,5,6,7,8,9,0\n" * 3)
    (root / "empty_cells.csv").write_text(
        "a,b,c,d,e,f,g,h,i,j\n1,2,3,4,5,6,7,8,9,0\n1,2,,4,5,6,7,8,9,0\n"
    )
    np.save(root / "x.npy", np.random.default_rng(0).normal(size=(20, 10)).astype(np.float32))
    return root


def linear(trained, *more: str) -> list[str]:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    return [f"ckpt_path={ckpt}", *more]


def images(trained, folder: Path) -> list[str]:
    ckpt = trained["image_classification"] / "checkpoints" / "last.ckpt"
    return [
        f"ckpt_path={ckpt}",
        "experiment=image_classification",
        "datamodule=image_folder",
        f"datamodule.root={folder}",
        "datamodule.num_workers=0",
    ]


def table(root: Path, name: str) -> list[str]:
    return ["datamodule=array_file", f"datamodule.path={root / name}"]


def model(cls: type, *more: str) -> list[str]:
    return [f"model._target_={HERE}.{cls.__name__}", "datamodule=array_file", *more]


# case: (overrides(trained, root), words of the problem, words of the fix)
CASES = {
    "id with a newline": (
        lambda t, r: images(t, r / "newline"),
        "holds a line break",
        "rename",
    ),
    "id with U+2028": (
        lambda t, r: images(t, r / "line_separator"),
        "holds a line break",
        "rename",
    ),
    "id with U+0085": (lambda t, r: images(t, r / "next_line"), "holds a line break", "rename"),
    "non-UTF-8 file name": (
        lambda t, r: images(t, r / "non_utf8"),
        "not valid Unicode",
        "rename the file",
    ),
    "corrupt image": (
        lambda t, r: images(t, r / "corrupt"),
        "cannot read the image",
        "replace or remove that file",
    ),
    "string csv column": (
        lambda t, r: linear(t, *table(r, "strings.csv")),
        "column 'j'",
        "feature_columns",
    ),
    "duplicate csv columns": (
        lambda t, r: linear(t, *table(r, "duplicate.csv")),
        "more than one column named ['a']",
        "its own name",
    ),
    "empty csv cells": (
        lambda t, r: linear(t, *table(r, "empty_cells.csv")),
        "column 'c'",
        "fill the empty cells",
    ),
    "0-dim output": (
        lambda t, r: linear(t, *model(ReturnsScalar, f"datamodule.path={r / 'x.npy'}")),
        "0-dim tensor",
        "one row per sample",
    ),
    "empty tuple output": (
        lambda t, r: linear(t, *model(ReturnsEmptyTuple, f"datamodule.path={r / 'x.npy'}")),
        "empty tuple",
        "return a tensor",
    ),
    "empty dict output": (
        lambda t, r: linear(t, *model(ReturnsEmptyDict, f"datamodule.path={r / 'x.npy'}")),
        "empty dict",
        "return a tensor",
    ),
    "output key 'index'": (
        lambda t, r: linear(t, *model(ReturnsIndexKey, f"datamodule.path={r / 'x.npy'}")),
        "['index'] are reserved",
        "rename those keys",
    ),
    "output key 'id' in parquet": (
        lambda t, r: linear(
            t, *model(ReturnsIdKey, f"datamodule.path={r / 'x.npy'}"), "writer=parquet"
        ),
        "['id'] are reserved",
        "rename those keys",
    ),
    "colliding expanded columns in csv": (
        lambda t, r: linear(
            t, *model(ReturnsCollidingKeys, f"datamodule.path={r / 'x.npy'}"), "writer=csv"
        ),
        "would write column 'a_1'",
        "rename the outputs",
    ),
    "very long output key": (
        lambda t, r: linear(t, *model(ReturnsLongKey, f"datamodule.path={r / 'x.npy'}")),
        "300 characters long",
        "at most 100 characters",
    ),
}


def nothing_complete(run_dir: Path) -> None:
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        assert json.loads(manifest.read_text())["status"] != "complete"
    finals = ["predictions.npy", "predictions.parquet", "predictions.csv", "ids.txt"]
    assert not any((run_dir / name).exists() for name in finals)
    assert not (run_dir / "predictions").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_refused_with_problem_and_fix(case, trained, hostile, tmp_path) -> None:
    overrides, problem, fix = CASES[case]
    with pytest.raises(UserError) as caught:
        predict_in_process(tmp_path, *overrides(trained, hostile))
    error = caught.value
    assert problem in error.problem, error.message
    assert error.fix and fix in error.fix, error.message
    assert "Traceback" not in error.message and len(error.message.splitlines()) <= 4
    nothing_complete(tmp_path / "run")


def test_the_corrupt_image_is_named_from_a_dataloader_worker(hostile) -> None:
    """torch re-raises a worker's error as ``cls(message=traceback)``: still our message."""
    from torch.utils.data import DataLoader

    from litpredict.data import ImageFolderDataset

    dataset = ImageFolderDataset(hostile / "corrupt", image_size=8)
    with pytest.raises(UserError) as caught:
        for _ in DataLoader(dataset, batch_size=1, num_workers=1):
            pass
    assert caught.value.problem.startswith("cannot read the image ")
    assert str(hostile / "corrupt" / "c" / "zz_bad.png") in caught.value.problem
    assert "Traceback" not in caught.value.message


def test_ids_with_odd_but_printable_characters_round_trip(trained, tmp_path) -> None:
    names = ["tab\there.png", 'comma, "quotes".png', "caf\u00e9 \U0001f600.png", "back\\slash.png"]
    for name in names:
        image(tmp_path / "odd" / "c" / name)
    manifest = predict_in_process(
        tmp_path, *images(trained, tmp_path / "odd"), "writer=parquet", "datamodule.batch_size=2"
    )
    assert manifest["status"] == "complete"
    expected = sorted(str(tmp_path / "odd" / "c" / name) for name in names)
    ids = pyarrow.parquet.read_table(tmp_path / "run" / "predictions.parquet").column("id")
    assert ids.to_pylist() == expected
    npy = predict_in_process(
        tmp_path, *images(trained, tmp_path / "odd"), f"hydra.run.dir={tmp_path / 'npy'}"
    )
    assert npy["status"] == "complete"
    text = (tmp_path / "npy" / "ids.txt").read_text(encoding="utf-8")
    assert text.split("\n")[:-1] == expected


def test_an_image_folder_skips_a_fifo_and_folders_named_like_images(tmp_path) -> None:
    from litpredict.data import ImageFolderDataset

    image(tmp_path / "c" / "a.png")
    os.mkfifo(tmp_path / "c" / "blocks.png")
    (tmp_path / "c" / "folder.png").mkdir()
    dataset = ImageFolderDataset(tmp_path, image_size=8)  # would block reading the FIFO
    assert dataset.sample_ids == [str(tmp_path / "c" / "a.png")]
    assert dataset[0][0].shape == (3, 8, 8)


def test_a_big_endian_npy_predicts_as_its_native_twin(trained, tmp_path) -> None:
    x = np.random.default_rng(1).normal(size=(9, 10)).astype(np.float32)
    np.save(tmp_path / "native.npy", x)
    np.save(tmp_path / "big.npy", x.astype(">f4"))
    for name in ("native", "big"):
        predict_in_process(
            tmp_path,
            *linear(trained, *table(tmp_path, f"{name}.npy")),
            f"hydra.run.dir={tmp_path / name}",
        )
    native = np.load(tmp_path / "native" / "predictions.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "big" / "predictions.npy"), native)


# --- a full disk: a 2 MiB tmpfs -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs at ``tmp_path/small``; skipped where mounting is not permitted."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_while_writing_shards_is_one_message(trained, tmp_path, small_disk) -> None:
    x = np.random.default_rng(2).normal(size=(600_000, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)  # 2.4 MB of predictions: more than the disk holds
    with pytest.raises(UserError) as caught:
        predict_in_process(
            tmp_path,
            *linear(trained, *table(tmp_path, "x.npy")),
            f"hydra.run.dir={small_disk / 'run'}",
        )
    assert "no space left on the device" in caught.value.problem
    assert "run the same command again" in caught.value.fix
    nothing_complete(small_disk / "run")


# The merge of interleaved shards (ddp) into a preallocated .npy on a full disk: in a
# subprocess, so a regression to writing through a sparse memory map (SIGBUS) cannot
# kill the test session.
MERGE_ON_A_FULL_DISK = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np

    from litpredict.process.errors import UserError
    from litpredict.writing.finalize import finalize
    from litpredict.writing.shard_layout import SHARDS, DatasetMeta
    from litpredict.writing.shard_writer import ShardWriter

    out, fmt, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    root = out / SHARDS
    root.mkdir(parents=True)
    DatasetMeta(n, None).write(root)
    values = np.random.default_rng(0).normal(size=(n, 64)).astype(np.float32)
    world = int(sys.argv[4])
    for rank in range(world):
        shard = ShardWriter(root / f"rank{rank:05d}", header_rows=n)
        mine = np.arange(rank, n, world)
        for start in range(0, len(mine), 4096):
            index = mine[start : start + 4096]
            shard.append(index, {"prediction": values[index]})
        shard.close("tensor")
    try:
        finalize(out, fmt)
    except UserError as error:
        print(error.message)
        sys.exit(2)
    """
)


@pytest.mark.parametrize(("fmt", "world"), [("npy", 2), ("parquet", 1), ("csv", 1), ("pt", 1)])
def test_a_full_disk_in_merge_or_format_is_one_message_never_sigbus(small_disk, fmt, world) -> None:
    # 5000 rows of 64 float32: 1.3 MB of shards, which fit; the merged copy or the format
    # do not.
    result = subprocess.run(
        [sys.executable, "-c", MERGE_ON_A_FULL_DISK, str(small_disk / "run"), fmt, "5000",
         str(world)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-3000:])
    assert "no space left on the device" in result.stdout, result.stdout
    assert not list((small_disk / "run").glob("predictions*"))
