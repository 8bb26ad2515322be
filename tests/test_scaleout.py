"""Ranks started from outside litpredict: torchrun (one agent, or two agents as two nodes),
srun, and sweeps through ``hydra/launcher=slurm`` on a real one-node SLURM (tests/slurm.py).

Each launch must leave exactly one complete run directory, whose predictions equal a
single-process run's and whose manifest records the world size. The torchrun tests need no
SLURM and are never skipped; the ``scheduler`` ones skip (with why) where SLURM cannot start.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, compose_predict, predict_in_process, read_manifest
from slurm import slurm_env_fixture  # noqa: F401  (the session fixture slurm_env)

TIMEOUT = 900  # a loaded 2-core machine: two ranks import torch and Lightning each
PREDICT = [sys.executable, "-m", "litpredict.predict"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # what `torchrun` runs


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Tiny features for most launches; a larger file (small batches) for a run to cancel."""
    root = tmp_path_factory.mktemp("scaleout_data")
    rng = np.random.default_rng(13)
    np.save(root / "x.npy", rng.normal(size=(1003, 10)).astype(np.float32))
    np.save(root / "slow.npy", rng.normal(size=(100000, 10)).astype(np.float32))
    return {"x": root / "x.npy", "slow": root / "slow.npy"}


def _ckpt(trained, name: str = "last.ckpt") -> Path:
    return trained["linear_regression"] / "checkpoints" / name


def _overrides(ckpt: Path | str, features: Path) -> list[str]:
    return [
        "experiment=linear_regression",
        f"ckpt_path={ckpt}",
        "datamodule=array_file",
        f"datamodule.path={features}",
    ]


def _reference(tmp_path: Path, ckpt: Path, features: Path) -> np.ndarray:
    """The predictions of one process, in-process: what every launch must reproduce."""
    run_dir = tmp_path / f"reference_{uuid.uuid4().hex[:8]}"  # no '=' of a checkpoint name
    predict_in_process(tmp_path, *_overrides(ckpt, features), f"hydra.run.dir={run_dir}")
    return np.load(run_dir / "predictions.npy")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True):
    full_env = {**(env or os.environ), "PYTHONPATH": str(REPO / "tests")}
    result = subprocess.run(
        command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=TIMEOUT
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}\n--- stdout ---\n"
            f"{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def _only_run_dir(outputs: Path) -> Path:
    """The one run directory under ``outputs/predict``: a second one is a rank that went astray."""
    runs = sorted((outputs / "predict").iterdir())
    assert len(runs) == 1, f"expected one run directory, found {[r.name for r in runs]}"
    return runs[0]


def _assert_complete(run_dir: Path, world_size: int, expected: np.ndarray) -> dict:
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete", manifest.get("error")
    assert manifest["world_size"] == world_size
    assert manifest["num_predictions"] == len(expected)
    # equal up to float32 rounding: each rank's batches differ, so do the matmul's sums
    np.testing.assert_allclose(np.load(run_dir / "predictions.npy"), expected, rtol=1e-5, atol=1e-6)
    assert (run_dir / ".hydra" / "config.yaml").is_file()  # written once, by rank 0
    assert not list(run_dir.glob("*shard*")), "shards left behind"
    return manifest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outputs_env(outputs: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    return {**(base or os.environ), "LITPREDICT_OUTPUTS": str(outputs)}


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"])
def test_strategy_is_set_without_plus_on_every_trainer(trainer) -> None:
    config = compose_predict("ckpt_path=x.ckpt", f"trainer={trainer}", "trainer.strategy=ddp")
    assert config.trainer.strategy == "ddp"


@pytest.mark.parametrize(
    ("trainer", "gpus"), [("cpu", None), ("ddp_cpu", None), ("gpu", 1), ("ddp", 2)]
)
def test_slurm_requests_gpus_only_for_gpu_trainers(trainer, gpus) -> None:
    from hydra.core.hydra_config import HydraConfig

    compose_predict("ckpt_path=x.ckpt", "hydra/launcher=slurm", f"trainer={trainer}")
    assert HydraConfig.get().launcher.gpus_per_node == gpus


def test_srun_tasks_agree_on_the_step_identity(monkeypatch) -> None:
    from litpredict.process import resolvers

    for name, value in {
        "SLURM_JOB_ID": "41",
        "SLURM_STEP_ID": "3",
        "SLURM_STEP_NUM_TASKS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    assert resolvers.run_name("2026-01-02_03-04-05") == "slurm-41.3"
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")  # a single task keeps its own name
    assert resolvers.run_name("2026-01-02_03-04-05").startswith("2026-01-02_03-04-05_")


@pytest.mark.parametrize(
    ("variable", "rank", "subdir"), [("RANK", "1", None), ("SLURM_PROCID", "0", ".hydra")]
)
def test_only_rank_zero_writes_hydra_files(monkeypatch, variable, rank, subdir) -> None:
    from litpredict.process import resolvers

    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv(variable, rank)
    assert resolvers.hydra_subdir() == subdir


def test_ranks_probe_one_output_directory_at_once(monkeypatch, tmp_path) -> None:
    """Every rank of a launch checks the shared run directory at the same moment: no rank may
    remove the file another rank's check wrote (CI once failed both torchrun tests so)."""
    import threading

    from litpredict.process.hydra_callbacks import _writable

    monkeypatch.setenv("WORLD_SIZE", "4")  # a multi-rank launch: the directory is kept
    failures: list[BaseException] = []

    def rank(barrier: threading.Barrier, run_dir: Path) -> None:
        barrier.wait()
        try:
            _writable(str(run_dir), "hydra.run.dir")
        except SystemExit as exit_:
            failures.append(exit_)

    for attempt in range(100):
        barrier = threading.Barrier(4)
        ranks = [
            threading.Thread(target=rank, args=(barrier, tmp_path / str(attempt))) for _ in range(4)
        ]
        for thread in ranks:
            thread.start()
        for thread in ranks:
            thread.join()
    assert not failures
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "a probe was left behind"


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_two_processes_share_one_run_directory(trained, data, tmp_path) -> None:
    ckpt = _ckpt(trained)
    outputs = tmp_path / "outputs"
    command = [*TORCHRUN, "--nproc-per-node=2", "-m", "litpredict.predict"]
    command += [*_overrides(ckpt, data["x"]), "trainer.devices=2", "trainer.strategy=ddp"]
    _run(command, cwd=tmp_path, env=_outputs_env(outputs))
    _assert_complete(_only_run_dir(outputs), 2, _reference(tmp_path, ckpt, data["x"]))


def _two_agents(
    ckpt: Path, features: Path, cwds: list[Path], env: dict[str, str]
) -> list[subprocess.CompletedProcess]:
    """Two torchrun agents as two one-process nodes rendezvousing on 127.0.0.1."""
    port, run_id = _free_port(), uuid.uuid4().hex[:8]
    agents = []
    for node_rank, cwd in enumerate(cwds):
        command = [*TORCHRUN, "--nnodes=2", "--nproc-per-node=1", f"--node-rank={node_rank}"]
        command += ["--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}"]
        command += [f"--rdzv-id={run_id}", "-m", "litpredict.predict"]
        command += [*_overrides(ckpt, features), "trainer.num_nodes=2", "trainer.devices=1"]
        command += ["trainer.strategy=ddp"]
        agents.append(
            subprocess.Popen(
                command,
                cwd=cwd,
                env={**env, "PYTHONPATH": str(REPO / "tests")},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for agent in agents:
        out, err = agent.communicate(timeout=TIMEOUT)
        results.append(subprocess.CompletedProcess(agent.args, agent.returncode, out, err))
    return results


def _late_rendezvous_shutdown(result: subprocess.CompletedProcess) -> bool:
    """torchrun's c10d rendezvous: the agent hosting the store may exit first, and the other
    agent then fails only at shutdown (its workers had finished; the manifest says complete)."""
    return "has failed to shutdown the rendezvous" in result.stderr


@pytest.mark.slow
@pytest.mark.ddp
def test_two_torchrun_agents_as_two_nodes(trained, data, tmp_path) -> None:
    ckpt = _ckpt(trained)
    outputs = tmp_path / "outputs"
    results = _two_agents(ckpt, data["x"], [tmp_path, tmp_path], _outputs_env(outputs))
    for result in results:
        assert result.returncode == 0 or _late_rendezvous_shutdown(result), result.stderr[-6000:]
    _assert_complete(_only_run_dir(outputs), 2, _reference(tmp_path, ckpt, data["x"]))


@pytest.mark.slow
@pytest.mark.ddp
def test_nodes_that_do_not_share_the_run_directory_stop_with_the_fix(
    trained, data, tmp_path
) -> None:
    """Each "node" resolves the relative outputs in its own directory: no half merge."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        node.mkdir()
    env = _outputs_env(Path("outputs"))  # relative: a node-local directory per agent
    results = _two_agents(_ckpt(trained), data["x"], nodes, env)
    for result in results:
        assert result.returncode != 0
    stderr = "".join(r.stderr for r in results)
    assert "is not the same directory for all 2 ranks" in stderr
    assert "filesystem every node mounts" in stderr
    run_dir = _only_run_dir(nodes[0] / "outputs")
    assert read_manifest(run_dir)["status"] == "failed"
    assert not (run_dir / "predictions.npy").exists()


@pytest.mark.scheduler
@pytest.mark.slow
@pytest.mark.ddp
def test_srun_tasks_share_one_run_directory(trained, data, tmp_path, slurm_env) -> None:
    ckpt = _ckpt(trained)
    outputs = tmp_path / "outputs"
    command = ["srun", "-N1", "--ntasks-per-node=2", *PREDICT]
    command += [*_overrides(ckpt, data["x"]), "trainer.devices=2", "trainer.strategy=ddp"]
    _run(command, cwd=tmp_path, env=_outputs_env(outputs, slurm_env))
    run_dir = _only_run_dir(outputs)
    assert run_dir.name.startswith("slurm-")  # slurm-<job id>.<step id>
    _assert_complete(run_dir, 2, _reference(tmp_path, ckpt, data["x"]))


def _slurm_sweep(ckpts: str, features: Path, sweep_dir: Path, *extra: str) -> list[str]:
    command = [*PREDICT, "-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1"]
    command += [f"hydra.sweep.dir={sweep_dir}", *_overrides(ckpts, features)]
    return [*command, "trainer=ddp_cpu", "trainer.strategy=ddp", *extra]


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.scheduler
@pytest.mark.slow
@pytest.mark.ddp
def test_slurm_sweep_with_two_ddp_tasks_per_job(trained, data, tmp_path, slurm_env) -> None:
    sweep_dir = tmp_path / "sweep"
    ckpts = f"glob({trained['linear_regression'] / 'checkpoints'}/*.ckpt)"
    _run(_slurm_sweep(ckpts, data["x"], sweep_dir), cwd=tmp_path, env=slurm_env)
    checkpoints = sorted((trained["linear_regression"] / "checkpoints").glob("*.ckpt"))
    jobs = _job_dirs(sweep_dir)
    assert len(jobs) == len(checkpoints)  # one directory per job, none astray
    for job in jobs:
        ckpt = Path(read_manifest(job)["checkpoint"]["path"])
        _assert_complete(job, 2, _reference(tmp_path, ckpt, data["x"]))
    with open(sweep_dir / "summary.csv", newline="") as summary:
        rows = list(csv.DictReader(summary))
    assert [row["status"] for row in rows] == ["complete"] * len(checkpoints)
    scripts = list((sweep_dir / ".submitit").rglob("*_submission.sh"))
    assert scripts and not any("gpu" in s.read_text() for s in scripts)  # a CPU partition


def _wait_for(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _ranks_writing(job_dir: Path) -> int:
    """How many ranks have appended a batch to their shard."""
    return len({p.parent for p in (job_dir / ".shards").glob("*/rank*/*.bin")})


def _manifest_or_none(job_dir: Path) -> dict | None:
    try:
        return read_manifest(job_dir)
    except (OSError, ValueError):
        return None


@pytest.mark.scheduler
@pytest.mark.slow
@pytest.mark.ddp
def test_cancelled_job_is_interrupted_and_the_resubmitted_sweep_completes_it(
    trained, data, tmp_path, slurm_env
) -> None:
    """scancel mid-prediction: an honest manifest; the same sweep again redoes only that job."""
    sweep_dir = tmp_path / "sweep"
    ckpts = f"{_ckpt(trained)},{_ckpt(trained)}"  # two jobs, one at a time
    command = _slurm_sweep(
        ckpts,
        data["slow"],
        sweep_dir,
        "datamodule.batch_size=2",
        "hydra.launcher.array_parallelism=1",
    )
    env = {**slurm_env, "PYTHONPATH": str(REPO / "tests")}
    sweep = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        first, second = sweep_dir / "0_last", sweep_dir / "1_last"
        _wait_for(lambda: (_manifest_or_none(first) or {}).get("status") == "complete", "job 0")
        # Both ranks past the process group's set-up, in the predict loop: a rank blocked in
        # a C call (init_process_group) cannot run Python's signal handler before SIGKILL.
        _wait_for(lambda: _ranks_writing(second) == 2, "both ranks of job 1 predicting")
        job_ids = [p.name for p in (sweep_dir / ".submitit").iterdir() if p.name.endswith("_1")]
        assert job_ids, list((sweep_dir / ".submitit").iterdir())
        subprocess.run(["scancel", *job_ids], env=slurm_env, check=True, timeout=60)
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode != 0, output[-4000:]
    _wait_for(lambda: (_manifest_or_none(second) or {}).get("status") != "running", "job 1 ends")
    interrupted = read_manifest(second)
    assert interrupted["status"] == "interrupted", interrupted
    finished = read_manifest(first)["finished_at"]

    _run(command, cwd=tmp_path, env=slurm_env)  # the same sweep, resubmitted
    assert read_manifest(first)["finished_at"] == finished  # complete: not redone
    expected = _reference(tmp_path, _ckpt(trained), data["slow"])
    _assert_complete(first, 2, expected)
    _assert_complete(second, 2, expected)
    assert [p.name for p in _job_dirs(sweep_dir)] == ["0_last", "1_last"]
