"""`python -m litpredict.reproduce` and determinism: same inputs, same bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, predict_in_process, read_manifest, run_cli
from litpredict.process.resolvers import job_dir_name

pytestmark = pytest.mark.slow


def reproduce(run_dir, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    return subprocess.run(
        [sys.executable, "-m", "litpredict.reproduce", str(run_dir), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def finished_run(trained, tmp_path, monkeypatch):
    """A complete run on a relative data path, with its own copy of the checkpoint (made
    in-process: the real command is the reproduce under test)."""
    ckpt = tmp_path / "model.ckpt"
    shutil.copy(trained["linear_regression"] / "checkpoints" / "epoch=0-step=64.ckpt", ckpt)
    np.save(tmp_path / "x.npy", np.random.default_rng(3).normal(size=(300, 10)).astype(np.float32))
    run_dir = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    predict_in_process(
        tmp_path,
        "datamodule=array_file",
        "datamodule.path=x.npy",  # relative to the run's working directory
        f"ckpt_path={ckpt}",
    )
    monkeypatch.undo()
    return run_dir, ckpt


def test_reproduce_gives_identical_bytes(finished_run, tmp_path) -> None:
    run_dir, _ = finished_run
    new_dir = tmp_path / "again"
    result = reproduce(run_dir, f"hydra.run.dir={new_dir}", cwd=REPO)  # another cwd on purpose
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reproduced" in result.stdout
    assert (new_dir / "predictions.npy").read_bytes() == (run_dir / "predictions.npy").read_bytes()
    assert read_manifest(new_dir)["status"] == "complete"


def test_reproduce_names_a_changed_checkpoint(finished_run, trained, tmp_path) -> None:
    run_dir, ckpt = finished_run
    shutil.copy(trained["linear_regression"] / "checkpoints" / "last.ckpt", ckpt)
    result = reproduce(run_dir, f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    assert result.returncode != 0
    assert f"checkpoint {ckpt} changed" in result.stdout
    assert "predictions.npy: differs" in result.stdout


def test_reproduce_names_a_changed_data_file(finished_run, tmp_path) -> None:
    run_dir, _ = finished_run
    np.save(tmp_path / "x.npy", np.zeros((300, 10), np.float32))
    result = reproduce(run_dir, cwd=tmp_path)
    assert result.returncode != 0
    assert f"data {tmp_path / 'x.npy'} changed" in result.stdout


def test_reproduce_refuses_an_incomplete_run(tmp_path) -> None:
    result = reproduce(tmp_path, cwd=tmp_path)
    assert result.returncode == 2 and "holds no complete run" in result.stderr


WRITERS = ("npy", "parquet", "csv", "pt")


def test_the_same_config_gives_byte_identical_files_in_every_format(trained, tmp_path) -> None:
    """A sweep of the real command, then the same jobs in this process: the same bytes."""
    ckpt = trained["sequence"] / "checkpoints" / "last.ckpt"
    digests = []
    for attempt in ("a", "b"):
        sweep = tmp_path / attempt
        if attempt == "a":
            run_cli(
                "predict",
                "-m",
                "experiment=sequence",
                f"writer={','.join(WRITERS)}",
                f"ckpt_path={ckpt}",
                f"hydra.sweep.dir={sweep}",
                cwd=tmp_path,
            )
        else:
            for num, writer in enumerate(WRITERS):
                predict_in_process(
                    tmp_path,
                    "experiment=sequence",
                    f"writer={writer}",
                    f"ckpt_path={ckpt}",
                    f"hydra.run.dir={sweep / job_dir_name(num, str(ckpt))}",
                )
        digests.append(
            {
                p.relative_to(sweep).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(sweep.glob("*/predictions.*"))
            }
        )
    assert len(digests[0]) == 4
    assert digests[0] == digests[1]
