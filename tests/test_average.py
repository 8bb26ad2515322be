"""Checkpoint averages: uniform and EMA against numbers computed by hand from the inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import predict_in_process, run_cli
from litpredict.process.errors import CheckpointError, UserError
from litpredict.results.averaging import PROVENANCE_KEY, average_checkpoints
from litpredict.rundir.hashing import sha256_file


def _checkpoint(path: Path, epoch: int, weight: torch.Tensor, tracked: int, **extra) -> Path:
    state = {
        "layer.weight": weight,
        "bn.running_mean": weight[0].clone(),
        "bn.num_batches_tracked": torch.tensor(tracked),
        **extra,
    }
    torch.save(
        {
            "epoch": epoch,
            "global_step": 10 * epoch,
            "state_dict": state,
            "hyper_parameters": {"width": 3},
            "optimizer_states": [{"state": {}}],
        },
        path,
    )
    return path


def _inputs(tmp_path: Path) -> tuple[list[Path], list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(2, 3, generator=generator) for _ in range(3)]
    paths = [
        _checkpoint(tmp_path / f"epoch={e}-step={10 * e}.ckpt", e, w, tracked=100 * (e + 1))
        for e, w in enumerate(weights)
    ]
    return paths, weights


def test_uniform_average_by_hand_and_integer_buffers_from_the_last(tmp_path):
    paths, weights = _inputs(tmp_path)
    provenance = average_checkpoints(list(reversed(paths)), tmp_path / "avg.ckpt")
    saved = torch.load(tmp_path / "avg.ckpt", weights_only=True)
    expected = (weights[0].double() + weights[1].double() + weights[2].double()) / 3
    assert torch.equal(saved["state_dict"]["layer.weight"], expected.float())
    assert saved["state_dict"]["bn.num_batches_tracked"].item() == 300  # the last one's
    assert provenance["taken_from_last"] == ["bn.num_batches_tracked"]
    assert [i["sha256"] for i in saved[PROVENANCE_KEY]["inputs"]] == [
        sha256_file(p) for p in paths
    ]  # in training order, whatever order they were given in
    assert saved["epoch"] == 2 and saved["hyper_parameters"] == {"width": 3}
    assert "optimizer_states" not in saved


def test_ema_in_training_order_by_hand(tmp_path):
    paths, weights = _inputs(tmp_path)
    average_checkpoints([paths[2], paths[0], paths[1]], tmp_path / "ema.ckpt", ema=0.9)
    saved = torch.load(tmp_path / "ema.ckpt", weights_only=True)
    expected = weights[0].double()
    for weight in weights[1:]:
        expected = 0.9 * expected + 0.1 * weight.double()
    assert torch.equal(saved["state_dict"]["layer.weight"], expected.float())
    assert saved[PROVENANCE_KEY]["method"] == "ema" and saved[PROVENANCE_KEY]["ema_decay"] == 0.9


def test_different_keys_or_shapes_are_refused(tmp_path):
    paths, _ = _inputs(tmp_path)
    other_shape = _checkpoint(tmp_path / "epoch=5-step=50.ckpt", 5, torch.zeros(3, 3), 1)
    with pytest.raises(CheckpointError, match=r"layer\.weight"):
        average_checkpoints([paths[0], other_shape], tmp_path / "x.ckpt")
    extra_key = tmp_path / "epoch=6-step=60.ckpt"
    _checkpoint(extra_key, 6, torch.zeros(2, 3), 1, b=torch.ones(1))
    with pytest.raises(CheckpointError, match="different state_dict keys"):
        average_checkpoints([paths[0], extra_key], tmp_path / "x.ckpt")
    with pytest.raises(UserError, match="decay"):
        average_checkpoints(paths, tmp_path / "x.ckpt", ema=1.5)
    assert not (tmp_path / "x.ckpt").exists()


def test_the_command(tmp_path):
    paths, _ = _inputs(tmp_path)
    done = run_cli("average", *map(str, paths), "--out", "avg.ckpt", "--ema", "0.5", cwd=tmp_path)
    assert "ema average" in done.stdout and (tmp_path / "avg.ckpt").is_file()
    assert "num_batches_tracked" in done.stdout + done.stderr  # says what it did not average


@pytest.mark.slow
def test_an_averaged_checkpoint_predicts_like_any_checkpoint(trained, tmp_path):
    checkpoints = sorted((trained["image_classification"] / "checkpoints").glob("epoch=*.ckpt"))
    average_checkpoints(checkpoints, tmp_path / "avg.ckpt")
    manifest = predict_in_process(
        tmp_path, "experiment=image_classification", f"ckpt_path={tmp_path / 'avg.ckpt'}"
    )
    assert manifest["status"] == "complete"
    assert manifest["checkpoint"]["sha256"] == sha256_file(tmp_path / "avg.ckpt")
