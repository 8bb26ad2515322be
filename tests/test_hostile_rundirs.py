"""Hostile and careless run directories (issue #14): no code runs from a run directory,
"complete" means complete for this run, one run at a time, a user's folder is never
written over, manifests are strict JSON, a full disk fails cleanly and the same command
completes once there is space."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, compose_predict, predict_in_process, read_manifest, run_cli
from litpredict.process.errors import UserError


def _features(path: Path, rows: int = 300, seed: int = 0) -> Path:
    np.save(path, np.random.default_rng(seed).standard_normal((rows, 10), dtype=np.float32))
    return path


def _strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


# -- 10. strict JSON -----------------------------------------------------------------------


def test_json_files_are_strict_nan_and_infinities_become_null(tmp_path) -> None:
    from litpredict.rundir.files import write_json
    from litpredict.rundir.manifest import COMPLETE, Manifest

    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": np.float32("nan")}}
    write_json(tmp_path / "x.json", data)
    assert _strict_loads((tmp_path / "x.json").read_text()) == {
        "a": None,
        "b": [None, None, 1.5],
        "c": {"d": None},
    }
    # finite data takes the fast path, compact or not; numpy scalars stay numbers there too
    finite = {"e": np.float32(0.5), "f": [np.int64(3), 2.0], "g": tmp_path}
    for indent in (2, None):
        write_json(tmp_path / "y.json", finite, indent=indent)
        assert _strict_loads((tmp_path / "y.json").read_text()) == {
            "e": 0.5,
            "f": [3, 2.0],
            "g": str(tmp_path),
        }
    manifest = Manifest(tmp_path / "run")
    manifest.start()
    manifest.finish(COMPLETE, metrics={"loss": float("nan"), "mae": 0.25})
    assert _strict_loads((tmp_path / "run" / "manifest.json").read_text())["metrics"] == {
        "loss": None,
        "mae": 0.25,
    }


# -- 1. every target type-checked before it is called --------------------------------------


@pytest.mark.parametrize(
    "section, node",
    [
        ("datamodule", {"_target_": "os.system", "_args_": ["touch {marker}"]}),
        ("trainer", {"_target_": "subprocess.Popen", "_args_": [["touch", "{marker}"]]}),
        ("writer", {"_target_": "pickle.loads", "_args_": ["x"]}),
        (
            "trainer",
            {
                "_target_": "pytorch_lightning.Trainer",
                "logger": {"_target_": "subprocess.call", "_args_": [["touch", "{marker}"]]},
            },
        ),
        (
            "datamodule",
            {
                "_target_": "litpredict.data.RegressionDemo",
                "transform": [{"_target_": "subprocess.Popen", "args": ["touch", "{marker}"]}],
            },
        ),
    ],
)
def test_build_refuses_targets_of_the_wrong_kind_before_calling_them(
    tmp_path, section, node
) -> None:
    from omegaconf import OmegaConf

    from litpredict.checkpoint.targets import UnsafeTarget
    from litpredict.data.build import build_datamodule
    from litpredict.trainer import build

    marker = tmp_path / "marker"
    cfg = OmegaConf.create({section: json.loads(json.dumps(node).replace("{marker}", str(marker)))})
    with pytest.raises(UnsafeTarget, match="refusing to call it"):
        {"datamodule": build_datamodule, "trainer": build.trainer}.get(
            section, lambda c: build.writer(c, tmp_path)
        )(cfg)
    assert not marker.exists()


def test_training_callbacks_and_model_are_checked(tmp_path) -> None:
    from omegaconf import OmegaConf

    from litpredict.checkpoint.model import training_model
    from litpredict.checkpoint.targets import UnsafeTarget
    from litpredict.trainer import build

    marker = tmp_path / "marker"
    evil = {"_target_": "subprocess.run", "_args_": [["touch", str(marker)]]}
    with pytest.raises(UnsafeTarget, match=r"callbacks\.evil"):
        build.training_callbacks(OmegaConf.create({"callbacks": {"evil": evil}}))
    model = {"_target_": "litpredict.models.LinearRegression", "loss": evil}
    with pytest.raises(UnsafeTarget, match=r"model\.loss"):
        training_model(OmegaConf.create({"model": model}))
    assert not marker.exists()


def test_either_lightning_package_is_accepted() -> None:
    from omegaconf import OmegaConf

    from litpredict.checkpoint.targets import check_targets

    for target in ("pytorch_lightning.Trainer", "lightning.pytorch.Trainer"):
        assert check_targets(OmegaConf.create({"_target_": target}), "trainer", "Trainer")
    logger = {"_target_": "lightning.pytorch.loggers.CSVLogger", "save_dir": "x"}
    node = OmegaConf.create({"_target_": "pytorch_lightning.Trainer", "logger": logger})
    assert check_targets(node, "trainer", "Trainer") == [
        "trainer: pytorch_lightning.Trainer",
        "trainer.logger: lightning.pytorch.loggers.CSVLogger",
    ]


def test_a_lightning_hydra_template_model_config_passes_the_checks() -> None:
    """LHT's configs/model/*.yaml nest a net and _partial_ optimizer/scheduler nodes: they
    must pass (train and reproduce check them), while a function there is still refused."""
    from omegaconf import OmegaConf

    from litpredict.checkpoint.targets import UnsafeTarget, check_targets

    node = OmegaConf.load(Path(__file__).parent / "lht_style/configs/model/mnist.yaml")
    assert check_targets(node, "model", "LightningModule") == [
        "model: lht_style.mnist_module.MNISTLitModule",
        "model.optimizer: torch.optim.Adam",
        "model.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau",
        "model.net: lht_style.simple_dense_net.SimpleDenseNet",
    ]
    node.optimizer._target_ = "torch.optim.lr_scheduler.LambdaLR.__init__"
    with pytest.raises(UnsafeTarget, match=r"model\.optimizer"):
        check_targets(node, "model", "LightningModule")


def test_predict_refuses_a_datamodule_target_that_is_a_function(ckpt, tmp_path) -> None:
    from litpredict.checkpoint.targets import UnsafeTarget

    marker = tmp_path / "marker"
    with pytest.raises(UnsafeTarget, match=r"datamodule\._target_ 'os\.system'"):
        predict_in_process(
            tmp_path,
            f"ckpt_path={ckpt}",
            "datamodule._target_=os.system",
            f"+datamodule._args_=['touch {marker}']",
        )
    assert not marker.exists()
    assert read_manifest(tmp_path / "run")["status"] == "failed"


def _hostile_copy(run_dir: Path, copy: Path, section: str, node) -> Path:
    shutil.copytree(run_dir, copy)
    manifest = read_manifest(copy)
    if isinstance(node, dict) and "_target_" not in node:
        manifest["config"][section].update(node)
    else:
        manifest["config"][section] = node
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="module")
def complete_run(ckpt, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("complete_run")
    predict_in_process(root, f"ckpt_path={ckpt}")
    return root / "run"


def test_reproduce_a_hostile_manifest_runs_nothing(complete_run, tmp_path) -> None:
    """The real command: a manifest whose writer would run a command is refused up front."""
    marker = tmp_path / "marker"
    evil = {"_target_": "subprocess.run", "_args_": [["touch", str(marker)]], "shell": False}
    hostile = _hostile_copy(complete_run, tmp_path / "hostile", "writer", evil)
    result = run_cli("reproduce", str(hostile), cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "writer._target_ 'subprocess.run'" in result.stderr
    assert "refusing" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    assert not list(tmp_path.glob("hostile.reproduce-*"))  # nothing was even started


@pytest.mark.parametrize(
    "section, node, message",
    [
        (
            "trainer",
            {"plugins": [{"_target_": "subprocess.Popen", "args": ["touch", "{marker}"]}]},
            r"trainer\.plugins\[0\]\._target_",
        ),
        ("datamodule", {"_target_": "numpy.load", "file": "{marker}"}, "numpy.load"),
        ("model", {"_target_": "os.system", "command": "touch {marker}"}, "os.system"),
        ("extra", {"_target_": "os.system", "command": "touch {marker}"}, "builds nothing"),
        ("datamodule", {"seed": "${oc.env:HOME}"}, "interpolates"),
    ],
)
def test_reproduce_refuses_every_target_that_fails(complete_run, tmp_path, section, node, message):
    from litpredict.checkpoint.targets import UnsafeTarget
    from litpredict.reproduce import reproduce

    marker = tmp_path / "marker"
    node = json.loads(json.dumps(node).replace("{marker}", str(marker)))
    hostile = _hostile_copy(complete_run, tmp_path / "hostile", section, node)
    with pytest.raises(UnsafeTarget, match=message):
        reproduce(hostile, tmp_path / "again")
    assert not marker.exists() and not (tmp_path / "again").exists()


def test_reproduce_names_what_it_will_build(complete_run) -> None:
    from litpredict.results.reproduction import checked_targets

    built = checked_targets(read_manifest(complete_run)["config"])
    assert sorted(built) == [
        "datamodule: litpredict.data.RegressionDemo",
        "model: litpredict.models.LinearRegression",
        "trainer: pytorch_lightning.Trainer",
        "writer: litpredict.writing.PredictionWriter",
    ]


# -- 3. "complete" means complete for this run ---------------------------------------------


def test_a_complete_run_of_another_config_or_data_is_an_error(ckpt, tmp_path) -> None:
    from litpredict.process.errors import RunDirError

    data = _features(tmp_path / "x.npy")
    base = [f"ckpt_path={ckpt}", "datamodule=array_file", f"datamodule.path={data}"]
    first = predict_in_process(tmp_path, *base)
    predictions = (tmp_path / "run" / "predictions.npy").read_bytes()
    assert predict_in_process(tmp_path, *base)["started_at"] == first["started_at"]  # same run

    with pytest.raises(RunDirError, match=r"another config .*writer\.format: 'npy' -> 'csv'"):
        predict_in_process(tmp_path, *base, "writer=csv")
    with pytest.raises(RunDirError, match=r"another config .*seed"):
        predict_in_process(tmp_path, *base, "seed=1")
    _features(data, seed=1)  # the data regenerated in place
    with pytest.raises(RunDirError, match=f"data {data} changed"):
        predict_in_process(tmp_path, *base)
    assert (tmp_path / "run" / "predictions.npy").read_bytes() == predictions
    assert read_manifest(tmp_path / "run")["started_at"] == first["started_at"]


def test_a_sweep_job_of_another_run_is_redone_and_says_why(ckpt, tmp_path) -> None:
    from litpredict.predict import predict
    from litpredict.process.job import Job
    from litpredict.sweep.summary import job_row

    data = _features(tmp_path / "x.npy")
    run_dir = tmp_path / "sweep" / "0_last"
    overrides = [f"ckpt_path={ckpt}", "datamodule=array_file", f"datamodule.path={data}"]
    predict_in_process(tmp_path, *overrides, f"hydra.run.dir={run_dir}")
    before = np.load(run_dir / "predictions.npy")
    _features(data, seed=1)
    config = compose_predict(*overrides, run_dir=run_dir)
    job = Job.from_hydra()
    job.multirun = True
    manifest = predict(config, job)
    assert manifest["status"] == "complete"
    assert f"data {data} changed" in manifest["redone_because"]
    assert not np.array_equal(np.load(run_dir / "predictions.npy"), before)
    assert f"data {data} changed" in job_row(run_dir)["redone_because"]


def _hydra_files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / ".hydra").iterdir())}


@pytest.mark.slow
def test_a_run_that_does_nothing_leaves_dot_hydra_as_it_was(ckpt, tmp_path) -> None:
    """The real command: Hydra rewrites .hydra/ before any job callback runs."""
    run_dir = tmp_path / "run"
    overrides = [f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}"]
    run_cli("predict", *overrides, cwd=tmp_path)
    before = _hydra_files(run_dir)
    time.sleep(1.1)  # a rewrite would differ at least in the timestamps Hydra records
    again = run_cli("predict", *overrides, "datamodule.batch_size=64", cwd=tmp_path, check=False)
    assert again.returncode == 2 and "another config" in again.stderr
    assert _hydra_files(run_dir) == before
    same = run_cli("predict", *overrides, cwd=tmp_path)
    assert "already complete" in same.stdout
    assert _hydra_files(run_dir) == before


# -- 8. one run at a time ------------------------------------------------------------------

_HOLD = """
import sys, time
from litpredict.rundir.lock import RunLock
RunLock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def _holding(run_dir: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_into_a_locked_directory_stops_naming_the_first(ckpt, tmp_path) -> None:
    from litpredict.process.errors import RunDirError

    run_dir = tmp_path / "run"
    holder = _holding(run_dir)
    try:
        with pytest.raises(RunDirError, match=f"in use by another run \\(pid {holder.pid} on "):
            predict_in_process(tmp_path, f"ckpt_path={ckpt}")
        result = run_cli(
            "predict", f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False
        )
        assert result.returncode == 2
        assert f"pid {holder.pid}" in result.stderr and "-c" in result.stderr
        assert not (run_dir / "manifest.json").exists() and not (run_dir / ".hydra").exists()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert predict_in_process(tmp_path, f"ckpt_path={ckpt}")["status"] == "complete"
    assert not (run_dir / ".litpredict.lock").exists()  # released with the run


def test_a_training_into_a_locked_directory_stops_naming_the_first(tmp_path) -> None:
    """Trainings are locked too: the command stops before Hydra writes .hydra/, and
    ``train`` itself (what a sweep job runs) before it writes anything."""
    from litpredict.process.errors import RunDirError
    from litpredict.process.job import Job
    from litpredict.train import train

    run_dir = tmp_path / "train"
    holder = _holding(run_dir)
    try:
        result = run_cli("train", f"hydra.run.dir={run_dir}", cwd=tmp_path, check=False)
        assert result.returncode == 2 and f"pid {holder.pid}" in result.stderr
        config = compose_predict("trainer.max_epochs=1", run_dir=run_dir, config_name="train")
        with pytest.raises(RunDirError, match=f"in use by another run \\(pid {holder.pid} on "):
            train(config, Job.from_hydra())
        assert sorted(p.name for p in run_dir.iterdir()) == [".litpredict.lock"]
    finally:
        holder.kill()
        holder.wait(timeout=60)


@pytest.mark.slow
def test_two_concurrent_commands_into_one_directory(ckpt, tmp_path) -> None:
    """Two real runs at once: the second stops at once naming the first, which completes.

    The first is paused (SIGSTOP) while it predicts, so the second surely meets it."""
    import signal

    data = _features(tmp_path / "x.npy", rows=20_000)
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "litpredict.predict",
        f"ckpt_path={ckpt}",
        "datamodule=array_file",
        f"datamodule.path={data}",
        f"hydra.run.dir={run_dir}",
    ]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "manifest.json").exists() and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        assert first.poll() is None and read_manifest(run_dir)["status"] == "running"
        second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"pid {first.pid}" in second.stderr and "in use by another run" in second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=900)
    assert first.returncode == 0, first_err
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete" and manifest["num_predictions"] == 20_000


# -- 9. a user's folder is never a run directory -------------------------------------------


def test_a_folder_with_files_no_manifest_lists_is_refused(ckpt, tmp_path) -> None:
    from litpredict.process.errors import RunDirError

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "predictions.npy").write_bytes(b"the user's own")
    (folder / "notes").mkdir()
    (folder / "notes" / "a.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"predictions\.npy"):
        predict_in_process(tmp_path, f"ckpt_path={ckpt}")
    result = run_cli(
        "predict", f"ckpt_path={ckpt}", f"hydra.run.dir={folder}", cwd=tmp_path, check=False
    )
    assert result.returncode == 2 and "no litpredict manifest lists" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes", "predictions.npy"]
    assert (folder / "predictions.npy").read_bytes() == b"the user's own"


def test_hydras_and_litpredicts_own_files_do_not_count(ckpt, tmp_path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("{}")
    (run_dir / "predict.log").write_text("")
    (run_dir / ".shards" / "rank00000").mkdir(parents=True)
    (run_dir / ".staging").mkdir()
    assert predict_in_process(tmp_path, f"ckpt_path={ckpt}")["status"] == "complete"
    from litpredict.rundir.ownership import foreign_files

    assert foreign_files(run_dir) == []  # its own outputs are listed by its manifest


# -- 6. write errors at the top level; leftovers cleared -----------------------------------


@pytest.mark.parametrize("shards_left", [True, False], ids=["shards left", "no shards left"])
def test_a_write_error_says_failed_and_the_rerun_clears_leftovers(
    ckpt, tmp_path, monkeypatch, shards_left
) -> None:
    import errno

    from litpredict.writing import PredictionWriter

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "x"))

    monkeypatch.setattr(PredictionWriter, "finalize", full)
    with pytest.raises(UserError, match="no space left") as caught:
        predict_in_process(tmp_path, f"ckpt_path={ckpt}")
    assert "run the same command again" in caught.value.fix
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "failed" and "no space left" in manifest["error"]
    (tmp_path / "run" / ".staging").mkdir(exist_ok=True)
    (tmp_path / "run" / ".staging" / "big.npy").write_bytes(b"0" * 1000)
    if not shards_left:  # e.g. removed by hand: the other leftovers still go
        shutil.rmtree(tmp_path / "run" / ".shards")
    (tmp_path / "run" / ".manifest.json.4242.tmp").write_text("{")  # a write cut short
    monkeypatch.undo()
    assert predict_in_process(tmp_path, f"ckpt_path={ckpt}")["status"] == "complete"
    assert not (tmp_path / "run" / ".staging").exists()
    assert not (tmp_path / "run" / ".shards").exists()
    assert not list((tmp_path / "run").glob(".*.tmp"))


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return mounted.returncode == 0


@pytest.mark.slow
def test_a_full_disk_then_space_the_same_command_completes(ckpt, tmp_path) -> None:
    disk = tmp_path / "disk"
    if os.geteuid() != 0 or not _mount_tmpfs(disk, "256k"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        data = _features(tmp_path / "x.npy", rows=100_000)  # 400 KB of predictions
        overrides = [
            f"ckpt_path={ckpt}",
            "datamodule=array_file",
            f"datamodule.path={data}",
            f"hydra.run.dir={disk / 'run'}",
        ]
        with pytest.raises(UserError, match=r"(?i)space"):
            predict_in_process(tmp_path, *overrides)
        manifest = disk / "run" / "manifest.json"
        if manifest.exists():
            assert _strict_loads(manifest.read_text())["status"] != "complete"
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        assert predict_in_process(tmp_path, *overrides)["status"] == "complete"
        assert not (disk / "run" / ".shards").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
