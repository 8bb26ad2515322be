"""A run stopped part way finishes by running the same command again: what its ranks
committed is reused, only the rest is predicted, and the final files are byte-identical to
an uninterrupted run's (issue #23).

How runs are stopped: a failure injected into ``predict_step`` (in-process, for the bad
cases: truncated, corrupt or torn segments, another checkpoint, config or data); kill -9 of
the real command; SIGTERM of a 2-rank ``ddp_cpu`` run; kill -9 of one rank of a torchrun
launch; SLURM's time limit on a sweep job, which submitit requeues (``scheduler``: skipped
without SLURM). The slow model (``slow_models.SlowLinear``) sleeps in ``predict_step`` so a
run lasts long enough to be stopped in its middle.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, predict_in_process, read_manifest, run_cli
from slurm import slurm_env_fixture  # noqa: F401  (the session fixture slurm_env)

pytestmark = pytest.mark.slow

N, BATCH = 1000, 100  # the in-process runs: 10 batches
SLOW_N, SLOW_BATCH = 6000, 50  # the stopped commands: 120 batches of ~50 ms (plus start-up)
TIMEOUT = 900
# A job of 10 batches of 10 s under a 2-minute limit whose signal comes 30 s before it:
# SLURM checks limits every 30 s, so the signal comes 60 to 90 s into an attempt (always
# before the limit), 20-30 s of which start the job here: 3-7 batches an attempt, then 2
# minutes pending before the requeued job starts.
SLURM_DELAY_S = 10
SLURM_LIMIT = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=30"]
PREDICT = [sys.executable, "-m", "litpredict.predict"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("resume_data")
    rng = np.random.default_rng(23)
    np.save(root / "x.npy", rng.normal(size=(N, 10)).astype(np.float32))
    np.save(root / "slow.npy", rng.normal(size=(SLOW_N, 10)).astype(np.float32))
    return {"x": root / "x.npy", "slow": root / "slow.npy"}


def _ckpt(trained, name: str = "last.ckpt") -> Path:
    return trained["linear_regression"] / "checkpoints" / name


def _overrides(ckpt: Path, features: Path, batch: int, *extra: str) -> list[str]:
    return [
        "experiment=linear_regression",
        f"ckpt_path={ckpt}",
        "datamodule=array_file",
        f"datamodule.path={features}",
        f"datamodule.batch_size={batch}",
        *extra,
    ]


def _slow(trained, features: Path, batch: int = SLOW_BATCH, delay_s: float = 0.05) -> list[str]:
    """The stopped commands: the slow model, committing every 0.2 s."""
    return _overrides(
        _ckpt(trained),
        features,
        batch,
        "model._target_=slow_models.SlowLinear",
        f"+model.delay_s={delay_s}",
        "resume.commit_every_s=0.2",
    )


def _predictions(run_dir: Path) -> bytes:
    return (run_dir / "predictions.npy").read_bytes()


def _committed_rows(run_dir: Path, attempt: int = 1) -> dict[str, int]:
    """Rows each rank of ``attempt`` has committed so far: {rank folder: rows}."""
    found = {}
    for log in (run_dir / ".shards" / f"attempt{attempt}").glob("rank*/commits.jsonl"):
        lines = [line for line in log.read_text().splitlines() if line.endswith("}")]
        found[log.parent.name] = json.loads(lines[-1])["rows"] if lines else 0
    return found


def _wait_for(condition, what: str, proc: subprocess.Popen | None = None, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _start(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    env = {**(env or os.environ), "PYTHONPATH": str(REPO / "tests")}
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _assert_resumed(run_dir: Path, reference: bytes, attempts: int | None = 2) -> dict:
    """Complete, byte-identical to ``reference``, with samples reused (``attempts``: None
    for two or more)."""
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete", manifest.get("error")
    resume = manifest["resume"]
    assert resume["attempts"] == attempts if attempts else resume["attempts"] >= 2
    assert 0 < resume["reused"] < manifest["num_predictions"]
    assert resume["reused"] + resume["predicted"] == manifest["num_predictions"]
    assert _predictions(run_dir) == reference
    assert not (run_dir / ".shards").exists()
    return manifest


@pytest.fixture(scope="module")
def references(trained, data, tmp_path_factory) -> dict[str, bytes]:
    """Uninterrupted runs: in-process (one process) and ``ddp_cpu`` (two ranks, whose
    batches are strided), on the data of each kind of test, at full speed."""
    root = tmp_path_factory.mktemp("resume_references")
    found = {}
    single = _overrides(_ckpt(trained), data["x"], BATCH)
    manifest = predict_in_process(root, *single, f"hydra.run.dir={root / 'single'}")
    assert manifest["resume"] == {"reused": 0, "predicted": N, "attempts": 1}  # never stopped
    found["single"] = _predictions(root / "single")
    slow = _overrides(_ckpt(trained), data["slow"], SLOW_BATCH)
    predict_in_process(root, *slow, f"hydra.run.dir={root / 'slow'}")
    found["slow"] = _predictions(root / "slow")
    run_cli("predict", *slow, "trainer=ddp_cpu", f"hydra.run.dir={root / 'ddp'}", cwd=root)
    found["ddp"] = _predictions(root / "ddp")
    return found


# --- Bad cases, in-process: a failure injected after some batches ------------------------


@pytest.fixture
def fail_at_batch(monkeypatch):
    """``fail(k)``: the linear model raises in its k-th predict_step (once undone, it runs)."""
    from litpredict.models.base import SupervisedModule
    from litpredict.models.linear import LinearRegression

    def fail(k: int) -> None:
        def predict_step(self, batch, batch_idx):
            if batch_idx == k:
                raise RuntimeError(f"stopped at batch {k}")
            return SupervisedModule.predict_step(self, batch, batch_idx)

        monkeypatch.setattr(LinearRegression, "predict_step", predict_step, raising=False)

    return fail


def _stopped_at(tmp_path, fail, overrides: list[str], batch: int) -> Path:
    """A first attempt that committed as it went and failed in batch ``batch``: its last
    commit, made as it stopped, holds every batch before."""
    fail(batch)
    from litpredict.process.errors import PredictionError

    # predict_step's error, named with the batch's shapes (checkpoint/predict_step.py)
    with pytest.raises(PredictionError, match=f"RuntimeError: stopped at batch {batch}"):
        predict_in_process(tmp_path, *overrides)
    run_dir = tmp_path / "run"
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed"
    assert manifest["resume"] == {"reused": 0, "predicted": None, "attempts": 1}
    assert _committed_rows(run_dir) == {"rank00000": batch * BATCH}
    return run_dir


def test_a_failed_run_resumes_from_its_commits(
    trained, data, references, tmp_path, monkeypatch, fail_at_batch, caplog
):
    overrides = _overrides(_ckpt(trained), data["x"], BATCH, "resume.commit_every_batches=1")
    run_dir = _stopped_at(tmp_path, fail_at_batch, overrides, 7)
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        predict_in_process(tmp_path, *overrides)
    assert "resuming: 700 of 1000 samples already written" in caplog.text
    assert "1000 predictions; 700 resumed from 1 earlier attempt -> " in caplog.text
    manifest = _assert_resumed(run_dir, references["single"])
    assert manifest["resume"] == {"reused": 700, "predicted": 300, "attempts": 2}


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "torn commit line"])
def test_a_damaged_segment_is_redone_never_merged(
    trained, data, references, tmp_path, monkeypatch, fail_at_batch, damage
) -> None:
    """The kill landed mid-write: the last segment is short, or a segment's bytes changed,
    or the commit line itself was cut. Its samples (and those after it) are predicted again."""
    overrides = _overrides(_ckpt(trained), data["x"], BATCH, "resume.commit_every_batches=1")
    run_dir = _stopped_at(tmp_path, fail_at_batch, overrides, 6)
    shard = run_dir / ".shards" / "attempt1" / "rank00000"
    values, log = shard / "prediction.bin", shard / "commits.jsonl"
    # A batch's commit may wait for the next batch while the last commit's fsync runs.
    commits = [json.loads(line)["rows"] for line in log.read_text().splitlines()]
    assert commits[-1] == 600 and len(commits) >= 2, commits
    if damage == "truncated":  # the last half batch is gone: the last segment is short
        os.truncate(values, values.stat().st_size - BATCH * 4 // 2)
        kept = commits[-2]
    elif damage == "corrupt":  # one float of row 350 changed on disk
        raw = bytearray(values.read_bytes())
        raw[-(600 - 350) * 4] ^= 0xFF
        values.write_bytes(bytes(raw))
        kept = max(rows for rows in [0, *commits] if rows <= 350)
    else:  # a commit line cut short by the kill
        log.write_text(log.read_text() + '{"rows": 700, "kind": "tensor", "sequ')
        kept = 600
    monkeypatch.undo()
    manifest = predict_in_process(tmp_path, *overrides)
    assert manifest["resume"]["reused"] == kept
    assert manifest["resume"]["predicted"] == N - kept
    assert _predictions(run_dir) == references["single"]


@pytest.mark.parametrize("change", ["checkpoint", "config", "data", "no fingerprint"])
def test_predictions_of_another_run_are_never_reused(
    trained, data, tmp_path, monkeypatch, fail_at_batch, change
) -> None:
    features = tmp_path / "x.npy"
    shutil.copy(data["x"], features)
    overrides = _overrides(_ckpt(trained), features, BATCH, "resume.commit_every_batches=1")
    run_dir = _stopped_at(tmp_path, fail_at_batch, overrides, 5)
    monkeypatch.undo()
    if change == "checkpoint":
        overrides[1] = f"ckpt_path={_ckpt(trained, 'epoch=0-step=64.ckpt')}"
        why = "another checkpoint"
    elif change == "config":
        overrides.append("seed=7")
        why = "another config (seed: 12345 -> 7)"
    elif change == "data":
        np.save(features, np.load(features) + 1)
        why = f"data {features} changed"
    else:  # killed before the background fingerprint of the data was recorded
        record = run_dir / ".shards" / "run.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "data": None}))
        why = "the earlier attempt stopped before its input data was fingerprinted"
    manifest = predict_in_process(tmp_path, *overrides)
    assert manifest["status"] == "complete"
    discarded = manifest["resume"].pop("discarded")
    assert discarded.startswith(why), discarded  # another checkpoint: its path is config too
    assert manifest["resume"] == {"reused": 0, "predicted": N, "attempts": 1}


def test_another_number_of_ranks_or_commit_interval_is_the_same_run(tmp_path) -> None:
    from litpredict.rundir.same_run import differences
    from litpredict.writing.resume import RANK_KEYS

    before = {
        "trainer": {"devices": 2, "strategy": "ddp_spawn", "num_nodes": 1},
        "resume": {"commit_every_s": 5},
        "datamodule": {"batch_size": 64},
    }
    after = {
        "trainer": {"devices": 1, "strategy": "auto", "num_nodes": 1},
        "resume": {"commit_every_s": 1},
        "datamodule": {"batch_size": 64},
    }
    earlier = {"checkpoint": {"sha256": "x"}, "config": before}
    assert differences(earlier, after, tmp_path, "x", ignored=RANK_KEYS) == []
    assert differences(earlier, after, tmp_path, "x") == [
        "another config (trainer.devices: 2 -> 1; trainer.strategy: 'ddp_spawn' -> 'auto')"
    ]


def test_the_batches_left_are_the_first_attempts_batches() -> None:
    """Two ranks of batch 3 wrote rows 0, 2, 4 and 1, 3 of 11: what is left is the rest of
    each rank's batches, as the first attempt cut them, in dataset order; a shuffled loader
    cannot be rebuilt and gets the missing samples in order."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from litpredict.writing.resumed_loader import remaining_batches

    dataset = TensorDataset(torch.zeros(11, 1))
    done = np.zeros(11, dtype=bool)
    done[[0, 2, 4, 1, 3, 5]] = True  # rank 0: batch [0, 2, 4]; rank 1: batch [1, 3, 5]
    loader = DataLoader(dataset, batch_size=3)
    assert remaining_batches(loader, done, world_size=2) == [range(6, 11, 2), range(7, 11, 2)]
    assert remaining_batches(loader, done, world_size=1) == [range(6, 9), range(9, 11)]
    shuffled = DataLoader(dataset, batch_size=3, shuffle=True)
    left = remaining_batches(shuffled, done, world_size=2)
    assert [b.tolist() for b in left] == [[6, 7, 8], [9, 10]]


# --- The real commands, stopped from outside ---------------------------------------------


def test_kill_9_in_the_middle_then_the_same_command_completes(trained, data, references, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*_slow(trained, data["slow"]), f"hydra.run.dir={run_dir}"]
    proc = _start([*PREDICT, *overrides], tmp_path)
    try:
        _wait_for(lambda: sum(_committed_rows(run_dir).values()) >= 1000, "commits", proc)
        # A run directory held by a live run is still refused, its shards left alone.
        from litpredict.process.errors import RunDirError

        with pytest.raises(RunDirError, match="in use by another run"):
            predict_in_process(tmp_path, *overrides)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = sum(_committed_rows(run_dir).values())
    assert 1000 <= committed < SLOW_N, "killed after the end: nothing left to resume"
    assert read_manifest(run_dir)["status"] == "running"  # kill -9: nothing could say more
    manifest = predict_in_process(tmp_path, *overrides)
    _assert_resumed(run_dir, references["slow"])
    assert manifest["resume"]["reused"] >= committed  # nothing committed is lost


@pytest.mark.ddp
def test_sigterm_of_two_ddp_ranks_then_two_ranks_or_one_complete(
    trained, data, references, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    overrides = [*_slow(trained, data["slow"]), f"hydra.run.dir={run_dir}"]
    proc = _start([*PREDICT, *overrides, "trainer=ddp_cpu"], tmp_path)
    try:
        _wait_for(
            lambda: len([r for r in _committed_rows(run_dir).values() if r >= 300]) == 2,
            "both ranks committing",
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert read_manifest(run_dir)["status"] == "interrupted"
    # The same run resumed twice from here: on two ranks, and on one (another machine).
    other = tmp_path / "run_on_one_rank"
    shutil.copytree(run_dir, other)
    run_cli("predict", *overrides, "trainer=ddp_cpu", cwd=tmp_path)
    manifest = _assert_resumed(run_dir, references["ddp"])
    assert manifest["world_size"] == 2
    on_one = [*_slow(trained, data["slow"]), f"hydra.run.dir={other}", "trainer=cpu"]
    manifest = predict_in_process(tmp_path, *on_one)
    _assert_resumed(other, references["ddp"])
    assert manifest["world_size"] == 1


def _rank_pid(agent: subprocess.Popen, rank: int) -> int | None:
    import psutil

    for child in psutil.Process(agent.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "litpredict" in " ".join(
                child.cmdline()
            ):
                return child.pid
        except psutil.Error:
            continue
    return None


@pytest.mark.ddp
def test_a_torchrun_rank_killed_then_the_same_launch_completes(
    trained, data, references, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    command = [*TORCHRUN, "--nproc-per-node=2", "-m", "litpredict.predict"]
    command += [*_slow(trained, data["slow"]), f"hydra.run.dir={run_dir}"]
    command += ["trainer.devices=2", "trainer.strategy=ddp"]
    agent = _start(command, tmp_path)
    try:
        _wait_for(
            lambda: len([r for r in _committed_rows(run_dir).values() if r >= 300]) == 2,
            "both ranks committing",
            agent,
        )
        os.kill(_rank_pid(agent, 1), signal.SIGKILL)
        agent.communicate(timeout=300)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode != 0
    assert read_manifest(run_dir)["status"] != "complete"
    _the_same_command_completes(command, tmp_path, os.environ, run_dir, references["ddp"])


def _the_same_command_completes(command, cwd, env, run_dir, reference) -> None:
    """The stopped 2-rank launch, run again as it was: it resumes and ends byte-identical."""
    env = {**env, "PYTHONPATH": str(REPO / "tests")}
    again = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert again.returncode == 0, again.stderr[-4000:]
    manifest = _assert_resumed(run_dir, reference)
    assert manifest["world_size"] == 2


# --- SLURM: srun tasks stopped; a sweep job longer than its time limit ------------------


@pytest.mark.scheduler
@pytest.mark.ddp
def test_srun_tasks_stopped_then_the_same_step_completes(
    trained, data, references, tmp_path, slurm_env
) -> None:
    run_dir = tmp_path / "run"
    command = ["srun", "-N1", "--ntasks-per-node=2", *PREDICT, *_slow(trained, data["slow"])]
    command += [f"hydra.run.dir={run_dir}", "trainer.devices=2", "trainer.strategy=ddp"]
    proc = _start(command, tmp_path, slurm_env)
    try:
        _wait_for(
            lambda: len([r for r in _committed_rows(run_dir).values() if r >= 300]) == 2,
            "both tasks committing",
            proc,
        )
        # What a preemption sends every task (srun itself, given SIGTERM, kills its tasks
        # with SIGKILL: that is a kill -9, which the periodic commits cover).
        jobs = subprocess.run(
            ["squeue", "-h", "-o", "%i"], env=slurm_env, capture_output=True, text=True
        ).stdout.split()
        (job,) = jobs  # this test's srun, the only job of the test cluster now
        subprocess.run(["scancel", "--signal=TERM", job], env=slurm_env, check=True)
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert read_manifest(run_dir)["status"] == "interrupted"
    _the_same_command_completes(command, tmp_path, slurm_env, run_dir, references["ddp"])


@pytest.mark.scheduler
def test_a_sweep_job_past_its_time_limit_finishes_through_requeues(
    trained, data, references, tmp_path, slurm_env
) -> None:
    """``--time`` of 2 minutes for a job of more: at the limit's signal the job commits,
    says ``interrupted`` and submitit requeues it; the requeued job resumes; the sweep
    command waits for it and reports its real end (5-10 minutes)."""
    sweep_dir = tmp_path / "sweep"
    command = [*PREDICT, "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1"]
    command += [*SLURM_LIMIT, "hydra.launcher.max_num_timeout=10", f"hydra.sweep.dir={sweep_dir}"]
    command += [*_slow(trained, data["x"], BATCH, delay_s=SLURM_DELAY_S), "trainer=cpu"]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**slurm_env, "PYTHONPATH": str(REPO / "tests")},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (job,) = [p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    _assert_resumed(job, references["single"], attempts=None)
    summary = (sweep_dir / "summary.csv").read_text()
    assert "complete" in summary and "interrupted" not in summary
