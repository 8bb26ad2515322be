"""Sweeps and ``average --ema`` in the order checkpoints were trained (#21.4).

lightning-hydra-template names checkpoints ``epoch_003.ckpt`` and ``last.ckpt``, and its runs
``runs/<time>/checkpoints/``: the order comes from the ``epoch``/``global_step`` each file
holds (read by litpredict.checkpoint.progress, which unpickles nothing), and a sweep over
several runs names each job's folder after its run. The checkpoints are written by a real
Lightning Trainer with LHT's ModelCheckpoint settings.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import read_manifest, run_cli
from litpredict.checkpoint.progress import UNKNOWN, read_progress
from test_sweeps import _jobs, _rows, _value

# LHT's run folder (its start time), and one named with '=', ',' and a space
RUN_A, RUN_B = "2024-05-01_12-00-00", "seed=2, lr 0.1"
# (epoch, global_step) the Trainer saves: run A 3 steps an epoch, run B 6
HELD = {
    RUN_A: {"epoch_000": (0, 3), "epoch_001": (1, 6), "epoch_002": (2, 9), "last": (2, 9)},
    RUN_B: {"epoch_000": (0, 6), "epoch_001": (1, 12), "last": (1, 12)},
}
IN_ORDER = ["epoch_000.ckpt", "epoch_001.ckpt", "epoch_002.ckpt", "last.ckpt"]


def _lht_run(root: Path, name: str, epochs: int, batch_size: int) -> Path:
    """``runs/<name>/checkpoints/`` as LHT's ModelCheckpoint fills it (every epoch kept)."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from litpredict.models import LinearRegression

    pl.seed_everything(len(name), verbose=False)
    x = torch.randn(48, 10)
    checkpoints = root / "runs" / name / "checkpoints"
    saver = ModelCheckpoint(
        dirpath=checkpoints,
        filename="epoch_{epoch:03d}",
        auto_insert_metric_name=False,
        save_last=True,
        save_top_k=-1,
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[saver],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    loader = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=batch_size)
    trainer.fit(LinearRegression(), loader)
    return checkpoints


@pytest.fixture(scope="module")
def lht_root(tmp_path_factory) -> Path:
    """Two LHT-style training runs of ``model=linear``: {RUN_A: 3 epochs, RUN_B: 2}."""
    root = tmp_path_factory.mktemp("lht")
    _lht_run(root, RUN_A, epochs=3, batch_size=16)
    _lht_run(root, RUN_B, epochs=2, batch_size=8)
    return root


def _checkpoints(root: Path, run: str) -> Path:
    return root / "runs" / run / "checkpoints"


# --- reading epoch and global_step ---


def test_reader_returns_what_the_trainer_saved(lht_root):
    for run, held in HELD.items():
        folder = _checkpoints(lht_root, run)
        assert sorted(p.stem for p in folder.iterdir()) == sorted(held)
        for stem, expected in held.items():
            path = folder / f"{stem}.ckpt"
            saved = torch.load(path, weights_only=True)
            assert (saved["epoch"], saved["global_step"]) == expected
            assert read_progress(path) == expected


def test_reader_gives_none_for_unreadable_files(lht_root, tmp_path):
    good = (_checkpoints(lht_root, RUN_A) / "epoch_001.ckpt").read_bytes()
    (tmp_path / "random.ckpt").write_bytes(random.Random(0).randbytes(4000))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "truncated.ckpt").write_bytes(good[: len(good) // 2])
    (tmp_path / "directory.ckpt").mkdir()
    torch.save({"epoch": 1, "global_step": 2}, tmp_path / "legacy.ckpt",
               _use_new_zipfile_serialization=False)  # fmt: skip
    torch.save(torch.zeros(3), tmp_path / "tensor.ckpt")  # no dict at the top
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "no_keys.ckpt")
    torch.save({"epoch": "one", "global_step": 2.5}, tmp_path / "not_ints.ckpt")
    with zipfile.ZipFile(tmp_path / "other_zip.ckpt", "w") as archive:
        archive.writestr("archive/weights.bin", b"\0" * 16)
    names = sorted(p.name for p in tmp_path.iterdir())
    for name in [*names, "missing.ckpt"]:
        assert read_progress(tmp_path / name) == UNKNOWN, name
    assert read_progress("s3://bucket/epoch_001.ckpt") == UNKNOWN


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_reader_unpickles_nothing_and_takes_only_top_level_keys(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.ckpt"
    torch.save(
        {
            "hyper_parameters": RunsCode(marker),  # before the keys: the reader walks past it
            "loops": {"epoch": 99, "global_step": 999, "x": 1},  # nested keys, a batch
            "meta": {"epoch": 98},  # a nested dict of one key: stored with SETITEM
            "epoch": 4,
            "global_step": 40,
            "state_dict": {"w": torch.ones(2)},
        },
        path,
    )
    with zipfile.ZipFile(path) as archive:  # the payload is really there
        assert b"system" in archive.read("hostile/data.pkl")
    assert read_progress(path) == (4, 40)
    assert not marker.exists()


def test_reader_stops_once_both_keys_are_read(tmp_path):
    """Lightning writes ``epoch`` and ``global_step`` first: nothing after them is read,
    here a data.pkl broken right after them."""
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "global_step": 300, "pytorch-lightning_version": "2.6.6"}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        pickled = archive.read(name)
    cut = pickled.index(b"pytorch-lightning_version") + len("pytorch-lightning_version")
    with zipfile.ZipFile(tmp_path / "cut.ckpt", "w") as archive:
        archive.writestr("archive/data.pkl", pickled[:cut] + b"\xff" * 64)
    assert read_progress(tmp_path / "cut.ckpt") == (3, 300)


# --- the order of a sweep's jobs and of average's inputs ---


def test_lht_names_sort_by_what_each_file_holds(lht_root, tmp_path):
    from hydra_plugins.litpredict._file_glob import expand

    folder = shutil.copytree(_checkpoints(lht_root, RUN_A), tmp_path / "checkpoints")
    shutil.copy(folder / "epoch_000.ckpt", folder / "epoch_009.ckpt")  # a name that lies
    (folder / "epoch_005.ckpt").write_bytes(b"not a checkpoint")  # numbers from its name
    (folder / "notes.ckpt").write_bytes(b"no numbers at all")
    order = [Path(p).name for p in expand([f"{folder}/*.ckpt"])]
    assert order == [
        "epoch_000.ckpt",
        "epoch_009.ckpt",  # holds epoch 0 as well: then by name
        "epoch_001.ckpt",
        "epoch_002.ckpt",
        "last.ckpt",  # epoch 2's step too: after the named checkpoint it repeats
        "epoch_005.ckpt",
        "notes.ckpt",
    ]


def test_average_ema_takes_its_inputs_in_the_sweep_order(lht_root, tmp_path):
    from hydra_plugins.litpredict._file_glob import expand
    from litpredict.results.averaging import average_checkpoints

    folder = _checkpoints(lht_root, RUN_A)
    given = [folder / n for n in ("last.ckpt", "epoch_002.ckpt", "epoch_000.ckpt")]
    given.append(folder / "epoch_001.ckpt")
    provenance = average_checkpoints(given, tmp_path / "ema.ckpt", ema=0.5)
    inputs = provenance["inputs"]
    assert [Path(i["path"]).name for i in inputs] == IN_ORDER
    assert [Path(p).name for p in expand([f"{folder}/*.ckpt"])] == IN_ORDER
    assert [(i["epoch"], i["global_step"]) for i in inputs] == [(0, 3), (1, 6), (2, 9), (2, 9)]


def _subdirs(batch: list[list[str]]) -> list[str | None]:
    """Each job's ``hydra.sweep.subdir`` override as the job gets it, or None."""
    found = []
    for job in batch:
        subdir = [o for o in job if o.startswith("hydra.sweep.subdir=")]
        found.append(_value(subdir[0]) if subdir else None)
    return found


EXPECTED_DIRS = [
    f"0_{RUN_A}-epoch_000",
    f"1_{RUN_A}-epoch_001",
    f"2_{RUN_A}-epoch_002",
    f"3_{RUN_A}-last",
    "4_seed=2_lr_0.1-epoch_000",
    "5_seed=2_lr_0.1-epoch_001",
    "6_seed=2_lr_0.1-last",
]


def test_a_glob_across_runs_names_each_job_after_its_run(lht_root, tmp_path):
    sweeper, (batch,) = _jobs(
        ["seed=1", f'ckpt_path=glob("{lht_root}/runs/*/checkpoints/*.ckpt")'],
        tmp_path / "sweep",
        sweeper_too=True,
    )
    assert _subdirs(batch) == EXPECTED_DIRS
    assert [Path(_value(job[1])).name for job in batch] == [*IN_ORDER, *IN_ORDER[:2], "last.ckpt"]
    plan = json.loads((tmp_path / "sweep" / "jobs.json").read_text())["jobs"]
    assert [j["overrides"] for j in plan] == batch
    assert len(sweeper._representatives(batch)) == 1  # folder names compose alike

    (one_run,) = _jobs([f'ckpt_path=glob("{lht_root}/runs/{RUN_A}/checkpoints/*.ckpt")'],
                       tmp_path / "one")  # fmt: skip
    assert _subdirs(one_run) == [None] * 4  # job folders as before: 0_epoch_000 ... 3_last


def test_runs_of_one_name_are_told_apart_by_the_folders_above(tmp_path):
    from hydra_plugins.litpredict._file_glob import run_labels

    paths = [f"{tmp_path}/{e}/seed=1/checkpoints/last.ckpt" for e in ("a", "b")]
    paths.append(f"{tmp_path}/b/seed=2/last.ckpt")
    assert run_labels(paths) == dict(zip(paths, ["a_seed=1", "b_seed=1", "seed=2"], strict=True))
    assert run_labels(paths[:1]) == {}


def test_a_users_own_job_folders_are_left_alone(lht_root, tmp_path):
    (batch,) = _jobs(
        [f'ckpt_path=glob("{lht_root}/runs/*/checkpoints/*.ckpt")'],
        tmp_path / "sweep",
        subdir="${hydra.job.num}",  # hydra.sweep.subdir as the user set it
    )
    assert len(batch) == 7 and _subdirs(batch) == [None] * 7


@pytest.mark.slow
def test_sweep_over_lht_runs_runs_in_training_order_in_run_named_folders(lht_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [
        "-m",
        "model=linear",  # plain Lightning checkpoints: no run config beside them names it
        f'ckpt_path=glob("{lht_root}/runs/*/checkpoints/*.ckpt")',
        f"hydra.sweep.dir={sweep_dir}",
    ]
    run_cli("predict", *command, cwd=tmp_path)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name[0].isdigit()) == sorted(
        EXPECTED_DIRS
    )
    manifests = [read_manifest(sweep_dir / d) for d in EXPECTED_DIRS]
    assert [m["status"] for m in manifests] == ["complete"] * 7
    started = [m["started_at"] for m in manifests]
    assert started == sorted(started)  # launched in this order
    # the summary's epoch and step are the checkpoint's (the names hold no step)
    rows = _rows(sweep_dir)
    assert [r["job_dir"] for r in rows] == EXPECTED_DIRS
    expected = [HELD[RUN_A][Path(d).name.split("-")[-1]] for d in EXPECTED_DIRS[:4]]
    expected += [HELD[RUN_B][d.rsplit("-", 1)[-1]] for d in EXPECTED_DIRS[4:]]
    assert [(int(r["epoch"]), int(r["step"])) for r in rows] == expected
    assert [Path(r["checkpoint"]).parts[-3] for r in rows] == [RUN_A] * 4 + [RUN_B] * 3
    # the folder name is the sweeper's doing, not a user override the run records
    assert not any("subdir" in o for m in manifests for o in m["overrides"])
    last, epoch_002 = (np.load(sweep_dir / EXPECTED_DIRS[i] / "predictions.npy") for i in (3, 2))
    np.testing.assert_array_equal(last, epoch_002)  # last.ckpt repeats epoch 2

    run_cli("predict", *command, cwd=tmp_path)  # resumed: the same folders, all skipped
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name[0].isdigit()) == sorted(
        EXPECTED_DIRS
    )
    assert [read_manifest(sweep_dir / d)["started_at"] for d in EXPECTED_DIRS] == started
