"""Ensembles: every method against numbers computed by hand from the member files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import predict_in_process, run_cli
from litpredict.results.combine import EnsembleError
from litpredict.results.ensembles import reproduce_ensemble, select_jobs, write_ensemble
from litpredict.rundir.hashing import sha256_file
from litpredict.rundir.predictions import read_run
from run_dirs import write_run, write_sweep


def _ensemble(sweep_dir: Path, out: Path, method=None, jobs=None, last=None, **kwargs):
    members = [read_run(d) for d in select_jobs(sweep_dir, jobs, last)]
    return write_ensemble(members, out, method, **kwargs)


def _members(sweep_dir: Path) -> list[np.ndarray]:
    return [np.load(d / "predictions.npy") for d in sorted(sweep_dir.glob("*_*"))]


def test_vote_is_the_majority_and_a_tie_goes_to_the_lowest_class(tmp_path):
    ids = np.array(
        [
            [3, 3, 1],  # majority 3
            [2, 0, 1],  # three-way tie: 0
            [4, 4, 4],
            [5, 1, 1],  # majority 1
        ]
    ).T.astype(np.int64)
    write_sweep(tmp_path / "sweep", list(ids), ids=["a", "b", "c", "d"])
    manifest = _ensemble(tmp_path / "sweep", tmp_path / "ens")
    result = np.load(tmp_path / "ens" / "predictions.npy")
    np.testing.assert_array_equal(result, [3, 0, 4, 1])
    assert result.dtype == np.int64
    assert manifest["ensemble"]["methods"] == {"prediction": "vote"}
    assert (tmp_path / "ens" / "ids.txt").read_text() == "a\nb\nc\nd\n"


def test_vote_breaks_ties_by_hand_on_random_members(tmp_path):
    rng = np.random.default_rng(0)
    members = [rng.integers(0, 4, size=200) for _ in range(4)]
    write_sweep(tmp_path / "sweep", members)
    _ensemble(tmp_path / "sweep", tmp_path / "ens", "vote")
    stacked = np.stack(_members(tmp_path / "sweep"))
    expected = [np.bincount(column, minlength=4).argmax() for column in stacked.T]
    np.testing.assert_array_equal(np.load(tmp_path / "ens" / "predictions.npy"), expected)


def test_mean_and_prob_mean_by_hand(tmp_path):
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=(50, 3)).astype(np.float32) for _ in range(3)]
    probabilities = [np.exp(x) / np.exp(x).sum(axis=1, keepdims=True) for x in logits]
    write_sweep(tmp_path / "reg", logits)
    write_sweep(tmp_path / "prob", probabilities)
    _ensemble(tmp_path / "reg", tmp_path / "mean")
    _ensemble(tmp_path / "prob", tmp_path / "pmean", "prob_mean", labels=_labels(tmp_path, 50))
    files = _members(tmp_path / "reg")
    expected = (sum(f.astype(np.float64) for f in files) / 3).astype(np.float32)
    np.testing.assert_array_equal(np.load(tmp_path / "mean" / "predictions.npy"), expected)
    written = np.load(tmp_path / "pmean" / "predictions.npy")
    np.testing.assert_allclose(written, sum(_members(tmp_path / "prob")) / 3, rtol=1e-6)
    manifest = json.loads((tmp_path / "pmean" / "manifest.json").read_text())
    labels = np.load(tmp_path / "labels.npy")
    assert manifest["metrics"]["accuracy"] == pytest.approx((written.argmax(1) == labels).mean())
    assert manifest["labels"]["sha256"] == sha256_file(tmp_path / "labels.npy")
    with pytest.raises(EnsembleError, match="probabilities"):
        _ensemble(tmp_path / "reg", tmp_path / "bad", "prob_mean")


def _labels(tmp_path: Path, n: int) -> Path:
    np.save(tmp_path / "labels.npy", np.arange(n) % 3)
    return tmp_path / "labels.npy"


def test_identical_members_give_the_member_bit_for_bit(tmp_path):
    rng = np.random.default_rng(2)
    member = rng.normal(size=(64, 2)).astype(np.float32)
    write_sweep(tmp_path / "sweep", [member] * 3)
    manifest = _ensemble(tmp_path / "sweep", tmp_path / "ens")
    first = tmp_path / "sweep" / "0_epoch=0" / "predictions.npy"
    assert sha256_file(tmp_path / "ens" / "predictions.npy") == sha256_file(first)
    assert [m["outputs"][0]["sha256"] for m in manifest["ensemble"]["members"]] == [
        sha256_file(first)
    ] * 3
    assert manifest["status"] == "complete"
    assert {"job_dir", "checkpoint", "outputs"} <= set(manifest["ensemble"]["members"][0])


def test_jobs_and_last_select_members_and_dict_outputs_combine_per_key(tmp_path):
    members = [{"ids": np.full(5, k), "score": np.full((5, 2), float(k))} for k in range(4)]
    for num, member in enumerate(members):
        write_run(tmp_path / "sweep" / f"{num}_epoch={num}", member, epoch=num)
    _ensemble(tmp_path / "sweep", tmp_path / "last2", last=2)
    np.testing.assert_array_equal(np.load(tmp_path / "last2/predictions/score.npy"), 2.5)
    np.testing.assert_array_equal(np.load(tmp_path / "last2/predictions/ids.npy"), 2)  # tie: 2
    _ensemble(tmp_path / "sweep", tmp_path / "some", jobs=[0, 3, 3])
    np.testing.assert_array_equal(np.load(tmp_path / "some/predictions/ids.npy"), 3)
    with pytest.raises(EnsembleError, match="no job 7"):
        select_jobs(tmp_path / "sweep", [7], None)


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        (dict(predictions=np.zeros(9, np.int64)), "row count"),
        (dict(predictions=np.zeros((8, 2), np.int64)), "output shape"),
        (
            dict(predictions=np.zeros(8, np.int64), datamodule={"_target_": "x.Other", "n": 8}),
            "data fingerprints differ",
        ),
    ],
)
def test_members_that_differ_are_refused_with_the_reason(tmp_path, other, reason):
    write_run(tmp_path / "sweep" / "0_a", np.zeros(8, np.int64), datamodule={"_target_": "x.D"})
    other.setdefault("datamodule", {"_target_": "x.D", "batch_size": 99})  # loader keys may differ
    write_run(tmp_path / "sweep" / "1_b", **other)
    with pytest.raises(EnsembleError, match=reason) as raised:
        _ensemble(tmp_path / "sweep", tmp_path / "ens")
    assert raised.value.fix
    assert not (tmp_path / "ens").exists()


def test_reproduce_combines_again_and_names_a_changed_member(tmp_path):
    rng = np.random.default_rng(3)
    write_sweep(tmp_path / "sweep", [rng.normal(size=10) for _ in range(3)])
    _ensemble(tmp_path / "sweep", tmp_path / "ens", format="parquet")
    assert (tmp_path / "ens" / "predictions.parquet").is_file()
    assert reproduce_ensemble(tmp_path / "ens", tmp_path / "again") == 0
    write_run(tmp_path / "sweep" / "1_epoch=1", rng.normal(size=10), epoch=1, datamodule=None)
    shutil.rmtree(tmp_path / "again")
    assert reproduce_ensemble(tmp_path / "ens", tmp_path / "again") == 1


def test_the_command_writes_a_run_and_refuses_with_exit_2(tmp_path):
    write_sweep(tmp_path / "sweep", [np.arange(6), np.arange(6), np.zeros(6, np.int64)])
    done = run_cli("ensemble", "sweep", "--jobs", "0,2,1", "--out", "ens", cwd=tmp_path)
    assert "3 members" in done.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "ens" / "predictions.npy"), np.arange(6))
    again = run_cli("ensemble", "sweep", "--out", "ens", cwd=tmp_path, check=False)
    assert again.returncode == 2
    assert "never overwritten" in again.stderr and "fix:" in again.stderr
    verified = run_cli("reproduce", "ens", "hydra.run.dir=ens2", cwd=tmp_path)
    assert "reproduced" in verified.stdout


@pytest.mark.slow
def test_an_ensemble_of_real_predictions(trained, tmp_path):
    checkpoints = sorted((trained["linear_regression"] / "checkpoints").glob("epoch=*.ckpt"))
    sweep = tmp_path / "sweep"
    for num, checkpoint in enumerate(checkpoints):
        predict_in_process(
            tmp_path,
            "experiment=linear_regression",
            f"ckpt_path={checkpoint}",
            f"hydra.run.dir={sweep / f'{num}_job'}",  # '=' would need Hydra quoting
        )
    manifest = _ensemble(sweep, tmp_path / "ens")
    members = _members(sweep)
    expected = (sum(m.astype(np.float64) for m in members) / len(members)).astype(members[0].dtype)
    np.testing.assert_array_equal(np.load(tmp_path / "ens" / "predictions.npy"), expected)
    recorded = [m["checkpoint"]["sha256"] for m in manifest["ensemble"]["members"]]
    assert recorded == [sha256_file(c) for c in checkpoints]
    one = sweep / "0_job"
    shutil.copytree(one, tmp_path / "twins" / "0_a")
    shutil.copytree(one, tmp_path / "twins" / "1_b")
    _ensemble(tmp_path / "twins", tmp_path / "twin_ens")
    assert sha256_file(tmp_path / "twin_ens" / "predictions.npy") == sha256_file(
        one / "predictions.npy"
    )
