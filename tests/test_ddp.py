"""Real DDP: 2 processes on gloo (trainer=ddp_cpu) against single-process and plain torch."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import read_manifest, run_cli
from plain_torch import linear, state_dict
from test_article_models import write_image_folder

pytestmark = [pytest.mark.slow, pytest.mark.ddp]


def predict_npy(tmp_path, ckpt, features, name, *overrides, check=True):
    np.save(tmp_path / f"{name}.npy", features)
    run_dir = tmp_path / name
    result = run_cli(
        "predict",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / f'{name}.npy'}",
        "datamodule.batch_size=64",
        f"ckpt_path='{ckpt}'",
        f"hydra.run.dir={run_dir}",
        *overrides,
        cwd=tmp_path,
        check=check,
    )
    return run_dir, result


@pytest.mark.parametrize("n", [1001, 1])
def test_ddp_equals_single_process_and_plain_torch(trained, tmp_path, n) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    features = np.random.default_rng(n).normal(size=(n, 10)).astype(np.float32)
    ddp_dir, _ = predict_npy(tmp_path, ckpt, features, "ddp", "trainer=ddp_cpu")
    cpu_dir, _ = predict_npy(tmp_path, ckpt, features, "cpu", "trainer=cpu")
    ddp = np.load(ddp_dir / "predictions.npy")
    assert read_manifest(ddp_dir)["world_size"] == 2
    assert read_manifest(ddp_dir)["num_predictions"] == n
    np.testing.assert_allclose(ddp, np.load(cpu_dir / "predictions.npy"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ddp, linear(state_dict(ckpt), features), rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu", "cpu.npy", "ddp", "ddp.npy"]


def test_ddp_keeps_sample_ids_in_order(trained, tmp_path) -> None:
    ckpt = trained["image_classification"] / "checkpoints" / "last.ckpt"
    write_image_folder(tmp_path / "images", n_per_class=7)  # 14 images, batches of 4
    runs = {}
    for trainer in ("cpu", "ddp_cpu"):
        runs[trainer] = tmp_path / trainer
        run_cli(
            "predict",
            "experiment=image_classification",
            "datamodule=image_folder",
            f"datamodule.root={tmp_path / 'images'}",
            "datamodule.batch_size=4",
            "datamodule.num_workers=0",
            f"trainer={trainer}",
            f"ckpt_path='{ckpt}'",
            f"hydra.run.dir={runs[trainer]}",
            cwd=tmp_path,
        )
    ids = (runs["ddp_cpu"] / "ids.txt").read_text().splitlines()
    assert ids == (runs["cpu"] / "ids.txt").read_text().splitlines()
    assert ids == sorted(str(p) for p in (tmp_path / "images").rglob("*.png"))
    np.testing.assert_array_equal(
        np.load(runs["ddp_cpu"] / "predictions.npy"), np.load(runs["cpu"] / "predictions.npy")
    )


def test_multirun_over_cpu_and_ddp(trained, tmp_path) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    sweep = tmp_path / "sweep"
    run_cli(
        "predict",
        "-m",
        "trainer=cpu,ddp_cpu",
        f"ckpt_path='{ckpt}'",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0_last", "1_last"]
    manifests = [read_manifest(j) for j in jobs]
    assert [m["world_size"] for m in manifests] == [1, 2]
    assert all(m["status"] == "complete" for m in manifests)
    cpu, ddp = (np.load(j / "predictions.npy") for j in jobs)
    np.testing.assert_allclose(ddp, cpu, rtol=1e-6, atol=1e-7)
    assert len(cpu) == manifests[0]["num_predictions"] == 2048
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no child re-ran the sweep


@pytest.mark.parametrize("failing_rank", [0, 1])
def test_a_failing_rank_ends_the_run_without_hanging(trained, tmp_path, failing_rank) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    features = np.zeros((512, 10), np.float32)
    start = time.monotonic()
    run_dir, result = predict_npy(
        tmp_path,
        ckpt,
        features,
        "run",
        "trainer=ddp_cpu",
        "model._target_=failing_models.FailsOnRank",
        f"+model.failing_rank={failing_rank}",
        check=False,
    )
    assert time.monotonic() - start < 240
    assert result.returncode != 0
    assert f"boom on rank {failing_rank}" in result.stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed"
    assert not (run_dir / "predictions.npy").exists()


def test_a_user_error_in_a_spawned_worker_reaches_stderr_as_problem_and_fix(trained, tmp_path):
    """ddp_spawn hands the main process only the worker's traceback text: errors.py decodes
    the UserError from it. Broken, this run would end with exit 1 and a describe() line."""
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    run_dir, result = predict_npy(
        tmp_path,
        ckpt,
        np.zeros((512, 10), np.float32),
        "run",
        "trainer=ddp_cpu",
        "model._target_=failing_models.FailsOnRank",
        "+model.failing_rank=1",
        "+model.user_error=true",
        check=False,
    )
    assert result.returncode == 2, result.stderr  # EXIT_USAGE: a UserError, not a crash
    assert "litpredict: error: boom on rank 1\n  fix: fix that rank's data" in result.stderr
    assert "Traceback" not in result.stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed"
    assert manifest["error"] == "boom on rank 1"
