"""Sweeps over checkpoints: file glob, job folders, summary, resume, launchers (issue 4).

The end-to-end tests run real multiruns in subprocesses over the checkpoints of the
``trained`` runs; the glob tests drive the sweeper with Hydra's real config loader.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import read_manifest, run_cli

BAD = "bad, epoch=9 copy.ckpt"  # corrupt, and named with '=', ',' and spaces


# --- the sweeper's expansion, with Hydra's real config loader and override parser ---


def _jobs(
    args: list[str],
    sweep_dir: Path,
    max_batch_size: int | None = None,
    sweeper_too: bool = False,
    subdir: str | None = None,
):
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.utils import setup_globals
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    from litpredict.process.config_dir import config_dir

    setup_globals()
    # First: Hydra's plugin scan re-runs plugin modules; import the sweeper after it.
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(config_dir()))
    from hydra_plugins.litpredict.file_glob_sweeper import FileGlobSweeper

    sweeper = FileGlobSweeper(max_batch_size=max_batch_size)
    sweeper.hydra_context = HydraContext(config_loader=loader, callbacks=None)
    sweep = {"dir": str(sweep_dir), **({"subdir": subdir} if subdir else {})}
    sweeper.config = OmegaConf.create({"hydra": {"sweep": sweep}})
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(args)
    batches = sweeper.split_arguments(overrides, max_batch_size)
    return (sweeper, batches) if sweeper_too else batches


def _value(override: str):
    """What a job's config holds for ``key=value`` (Hydra's parser, then OmegaConf)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    return OmegaConf.create({"v": OverridesParser.create().parse_override(override).value()}).v


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")
    return folder


def test_glob_orders_by_epoch_then_step_then_last_then_name(tmp_path):
    names = ["last.ckpt", "zz.ckpt", "epoch=10-step=1100.ckpt", "epoch=2-step=250.ckpt"]
    names += ["last-v1.ckpt", "epoch=2-step=200.ckpt", "aa.ckpt", "notes.txt"]
    folder = _touch(tmp_path / "run", *names)
    (batch,) = _jobs([f'ckpt_path=glob("{folder}/*.ckpt")'], tmp_path / "sweep")
    order = [Path(_value(job[0])).name for job in batch]
    assert order == [
        "epoch=2-step=200.ckpt",
        "epoch=2-step=250.ckpt",
        "epoch=10-step=1100.ckpt",
        "last-v1.ckpt",
        "last.ckpt",
        "aa.ckpt",
        "zz.ckpt",
    ]
    plan = json.loads((tmp_path / "sweep" / "jobs.json").read_text())["jobs"]
    assert [j["overrides"] for j in plan] == batch
    assert [j["num"] for j in plan] == list(range(7))


def test_glob_names_with_special_characters_reach_the_job_exactly(tmp_path):
    names = [BAD, 'it\'s "quoted".ckpt', "back\\slash.ckpt", "a${x}.ckpt", "b[1](2){3}:.ckpt"]
    folder = _touch(tmp_path / "odd dir, x=1", *names)
    (batch,) = _jobs([f"ckpt_path=glob('{folder}/*.ckpt')"], tmp_path / "sweep")
    assert sorted(_value(job[0]) for job in batch) == sorted(str(folder / n) for n in names)


def test_glob_exclude_matches_names_or_paths(tmp_path):
    folder = _touch(tmp_path / "run", "epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt", "last.ckpt")
    _touch(folder, BAD)
    arg = f'ckpt_path=glob("{folder}/*.ckpt",exclude=[last.ckpt,"bad*","*/run/epoch=1*"])'
    (batch,) = _jobs([arg], tmp_path / "sweep")
    assert [Path(_value(j[0])).name for j in batch] == ["epoch=0-step=1.ckpt"]


def test_glob_combines_with_other_sweeps_and_batches(tmp_path):
    folder = _touch(tmp_path / "run", "epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt")
    args = ["seed=1,2", f'ckpt_path=glob("{folder}/*.ckpt")', "writer=csv"]
    batches = _jobs(args, tmp_path / "sweep", max_batch_size=3)
    assert [len(b) for b in batches] == [3, 1]
    jobs = [job for batch in batches for job in batch]
    assert [(j[0], Path(_value(j[1])).stem, j[2]) for j in jobs] == [
        ("seed=1", "epoch=0-step=1", "writer=csv"),
        ("seed=1", "epoch=1-step=2", "writer=csv"),
        ("seed=2", "epoch=0-step=1", "writer=csv"),
        ("seed=2", "epoch=1-step=2", "writer=csv"),
    ]


def test_a_batch_is_validated_once_per_distinct_non_glob_overrides(tmp_path):
    """Hydra composes every job of a batch to validate it, and again to run it; jobs
    that differ only in the matched file compose alike, so one of them is validated."""
    folder = _touch(tmp_path / "run", *(f"epoch={e}-step={e}.ckpt" for e in range(5)))
    args = ["seed=1,2", f'ckpt_path=glob("{folder}/*.ckpt")']
    sweeper, (batch,) = _jobs(args, tmp_path / "sweep", sweeper_too=True)
    assert len(batch) == 10
    chosen = sweeper._representatives(batch)
    assert [job[0] for job in chosen] == ["seed=1", "seed=2"]
    assert all(job in batch for job in chosen)


def test_glob_may_depend_on_another_key_for_pairs(tmp_path):
    _touch(tmp_path / "a" / "checkpoints", "epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt")
    _touch(tmp_path / "b" / "checkpoints", "epoch=0-step=5.ckpt")
    pattern = f'ckpt_path=glob("{tmp_path}/${{experiment}}/checkpoints/*.ckpt")'
    (batch,) = _jobs([pattern, "experiment=a,b"], tmp_path / "sweep")
    pairs = [(j[1], Path(_value(j[0])).relative_to(tmp_path).parts[0]) for j in batch]
    assert pairs == [("experiment=a", "a"), ("experiment=a", "a"), ("experiment=b", "b")]


def test_hydra_group_glob_still_selects_config_choices(tmp_path):
    (batch,) = _jobs(["writer=glob(p*)", "ckpt_path=x.ckpt"], tmp_path / "sweep")
    assert [job[0] for job in batch] == ["writer=parquet", "writer=pt"]


@pytest.mark.parametrize(
    "arg, message",
    [
        ('ckpt_path=glob("{tmp}/none/*.ckpt")', "no file matches"),
        ('ckpt_path=glob("{tmp}/run/*.ckpt",exclude="*")', "no file matches"),
        ("writer=glob(zz*)", "no option of config group 'writer' matches"),
        ('ckpt_path=glob("{tmp}/${{nokey}}/*.ckpt")', "refers to ${nokey}"),
    ],
)
def test_glob_without_matches_is_an_error(tmp_path, arg, message):
    from hydra.errors import CompactHydraException

    _touch(tmp_path / "run", "epoch=0-step=1.ckpt")
    with pytest.raises(CompactHydraException, match=re.escape(message)):
        _jobs([arg.format(tmp=tmp_path), "seed=1"], tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_zero_match_glob_exits_non_zero_without_jobs(tmp_path):
    result = run_cli(
        "predict",
        "-m",
        f"ckpt_path=glob({tmp_path}/missing/*.ckpt)",
        f"hydra.sweep.dir={tmp_path}/sweep",
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    assert "no file matches" in result.stderr and "missing/*.ckpt" in result.stderr
    assert "Traceback" not in result.stderr
    sweep_dir = tmp_path / "sweep"  # may exist (checked writable at start), but holds no job
    assert not sweep_dir.exists() or not any(p.name[0].isdigit() for p in sweep_dir.iterdir())
    assert not (sweep_dir / "jobs.json").exists()


@pytest.mark.parametrize(
    "typed",
    [
        "ckpt_path=glob({tmp}/run/epoch=*.ckpt)",
        "ckpt_path=glob({tmp}/run/epoch=*.ckpt, exclude=epoch=0-*)",
        "ckpt_path=glob({tmp}/run/epoch=[0-9]*.ckpt,exclude=last.ckpt)",
    ],
)
def test_glob_of_lightning_names_works_unquoted(tmp_path, typed):
    from litpredict.process.argv import quote_checkpoint_paths

    _touch(tmp_path / "run", "epoch=0-step=1.ckpt", "epoch=1-step=2.ckpt", "last.ckpt")
    (override,) = quote_checkpoint_paths([typed.format(tmp=tmp_path)])
    (batch,) = _jobs([override], tmp_path / "sweep")
    found = [Path(_value(job[0])).name for job in batch]
    assert found[-1] == "epoch=1-step=2.ckpt" and "last.ckpt" not in found


# --- the summary, one job at a time ---


def _finished_job(sweep_dir: Path, num: int) -> Path:
    """A job directory as a finished job leaves it: a complete manifest."""
    job_dir = sweep_dir / f"{num}_epoch={num}-step={num * 10}"
    job_dir.mkdir(parents=True)
    manifest = {
        "status": "complete",
        "checkpoint": {"path": f"/ck/epoch={num}-step={num * 10}.ckpt", "epoch": num,
                       "global_step": num * 10},
        "num_predictions": 2048,
        "duration_s": 0.1,
        "metrics": {"mse": 1.0 / (num + 1)},
    }  # fmt: skip
    (job_dir / "manifest.json").write_text(json.dumps(manifest))
    return job_dir


def test_each_job_reads_only_its_own_manifest(tmp_path, monkeypatch):
    """Per-job summary work must not grow with the sweep (issue 16): count manifest reads."""
    from litpredict.sweep import plot, summary
    from litpredict.sweep.plan import write_plan
    from litpredict.sweep.update import update_summary

    reads: list[str] = []
    real_read = summary.read_manifest_file

    def counting_read(job_dir):
        reads.append(Path(job_dir).name)
        return real_read(job_dir)

    renders: list[int] = []
    tables: list[int] = []
    real_csv = summary._csv_text
    monkeypatch.setattr(summary, "read_manifest_file", counting_read)
    monkeypatch.setattr(plot, "render", lambda rows: renders.append(len(rows)) or b"png")
    monkeypatch.setattr(summary, "_csv_text", lambda c, r: tables.append(len(r)) or real_csv(c, r))
    sweep_dir = tmp_path / "sweep"
    jobs = 40
    write_plan(sweep_dir, [[f"ckpt_path=/ck/{n}.ckpt"] for n in range(jobs)])
    per_job = []
    for num in range(jobs):
        job_dir = _finished_job(sweep_dir, num)
        reads.clear()
        row, progress = update_summary(sweep_dir, job_dir, files_every_s=3600, plot_every_s=3600)
        per_job.append(list(reads))
        assert (progress.finished, progress.total) == (num + 1, jobs)
        assert (row["job_dir"], row["status"]) == (job_dir.name, "complete")
    assert per_job == [[f"{n}_epoch={n}-step={n * 10}"] for n in range(jobs)]
    # the first job writes the tables and the plot, then at most every hour; the last job
    # (the one that ends the plan) writes them again: no job in between rewrites them
    assert renders == [jobs, jobs] and tables == [jobs, jobs]
    incremental = json.loads((sweep_dir / "summary.json").read_text())
    rebuilt = summary.write_summary(sweep_dir, plot=False)  # what litpredict-summary writes
    assert incremental["rows"] == rebuilt["rows"] and incremental["counts"] == {"complete": jobs}

    write_plan(sweep_dir, [[f"ckpt_path=/ck/{n}.ckpt"] for n in range(jobs + 1)])  # re-launch
    reads.clear()
    update_summary(sweep_dir, sweep_dir / "0_epoch=0-step=0", plot_every_s=3600)
    assert len(reads) == jobs  # a new plan: rebuilt once from every job's files
    relaunched = json.loads((sweep_dir / "summary.json").read_text())
    assert relaunched["counts"] == {"complete": jobs, "pending": 1}

    # a resumed sweep whose jobs were all complete: no job "ends the plan" again
    write_plan(sweep_dir, [[f"ckpt_path=/ck/{n}.ckpt"] for n in range(jobs)])
    renders.clear()
    tables.clear()
    for num in range(jobs):
        update_summary(sweep_dir, sweep_dir / f"{num}_epoch={num}-step={num * 10}",
                       files_every_s=3600, plot_every_s=3600)  # fmt: skip
    assert renders == [jobs] and tables == [jobs]  # the relaunch's first job, once


def test_progress_line_counts_failures_and_estimates_the_rest():
    from litpredict.sweep.update import Progress

    progress = Progress(finished=10, failed=2, total=40, elapsed_s=20.0)
    assert progress.eta_s == pytest.approx(60.0)
    assert progress.line() == "[10/40 done, 2 failed, 0:20 elapsed, ETA 1:00]"
    assert Progress(0, 0, 5, 1.0).line() == "[0/5 done, 0:01 elapsed, ETA ?]"


# --- real sweeps ---


def _copy_checkpoints(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir / "checkpoints", target)
    (target / BAD).write_bytes(os.urandom(2000))
    return target


@pytest.fixture(scope="module")
def checkpoints(trained, tmp_path_factory) -> Path:
    """The linear run's checkpoints plus a corrupt file named with '=', ',' and spaces."""
    return _copy_checkpoints(trained["linear_regression"], tmp_path_factory.mktemp("ck") / "ck")


def _sweep(checkpoints: Path, sweep_dir: Path, *extra: str, check: bool = False):
    return run_cli(
        "predict",
        "-m",
        f'ckpt_path=glob("{checkpoints}/*.ckpt")',
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
        cwd=sweep_dir.parent,
        check=check,
    )


@pytest.fixture(scope="module")
def swept(checkpoints, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    sweep_dir = tmp_path_factory.mktemp("sweep") / "sweep"
    # batches of one job: the jobs after the failing one must still run
    return sweep_dir, _sweep(checkpoints, sweep_dir, "hydra.sweeper.max_batch_size=1")


def _rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="") as file:
        return list(csv.DictReader(file))


def _own(row: dict[str, str]) -> dict[str, str]:
    """A summary row without the columns computed from other jobs' predictions."""
    return {k: v for k, v in row.items() if not k.endswith("_with_last")}


def _files(job_dir: Path) -> dict[str, tuple[int, str]]:
    """The job's prediction files and manifest: {name: (mtime_ns, sha256)}."""
    from litpredict.rundir.hashing import sha256_file

    names = [o["path"] for o in read_manifest(job_dir)["outputs"]] + ["manifest.json"]
    return {n: ((job_dir / n).stat().st_mtime_ns, sha256_file(job_dir / n)) for n in names}


# the corrupt file's name says epoch 9: after last.ckpt, which holds epoch 1
EXPECTED_DIRS = ["0_epoch=0-step=64", "1_epoch=1-step=128", "2_last", "3_bad_epoch=9_copy"]


@pytest.mark.slow
def test_glob_sweep_predicts_with_every_checkpoint(swept, checkpoints):
    sweep_dir, result = swept
    assert result.returncode == 1, result.stderr[-2000:]  # one job failed: the sweep says so
    assert (
        "1 of 4 jobs failed" in result.stderr
        and f'#3 ckpt_path="{checkpoints / BAD}"' in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "raised" not in result.stderr  # no Hydra callback failed on the sweep's ckpt_path: ???
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name[0].isdigit()) == EXPECTED_DIRS
    # A quiet console: one line per job with the progress; banners and warnings in the logs.
    job_lines = [line for line in result.stdout.splitlines() if " done" in line]
    assert len(job_lines) == 4 and job_lines[-1].startswith("[4/4 done, 1 failed,")
    assert "GPU available" not in result.stdout + result.stderr
    assert "GPU available" in (sweep_dir / EXPECTED_DIRS[0] / "predict.log").read_text()
    manifests = {d: read_manifest(sweep_dir / d) for d in EXPECTED_DIRS}
    statuses = ["complete", "complete", "complete", "failed"]
    assert [m["status"] for m in manifests.values()] == statuses
    assert manifests["3_bad_epoch=9_copy"]["checkpoint"]["path"] == str(checkpoints / BAD)
    predictions = {
        d: np.load(sweep_dir / d / "predictions.npy") for d, m in manifests.items() if m["outputs"]
    }
    assert all(p.shape == (2048, 1) and np.isfinite(p).all() for p in predictions.values())
    assert not np.allclose(predictions["0_epoch=0-step=64"], predictions["1_epoch=1-step=128"])
    # last.ckpt is saved at the same step as the final epoch: the same weights
    np.testing.assert_array_equal(predictions["2_last"], predictions["1_epoch=1-step=128"])

    rows = _rows(sweep_dir)
    assert [r["job_dir"] for r in rows] == EXPECTED_DIRS
    assert [r["status"] for r in rows] == statuses
    assert [r["epoch"] for r in rows] == ["0", "1", "1", ""]
    assert [r["step"] for r in rows] == ["64", "128", "128", ""]
    assert rows[3]["checkpoint"] == str(checkpoints / BAD)
    assert rows[3]["error"] == manifests["3_bad_epoch=9_copy"]["error"] and rows[3]["error"]
    for row in rows[:3]:
        manifest = manifests[row["job_dir"]]
        assert int(row["num_predictions"]) == 2048
        assert float(row["mse"]) == pytest.approx(manifest["metrics"]["mse"])
        assert float(row["mae"]) == pytest.approx(manifest["metrics"]["mae"])
        assert float(row["duration_s"]) == manifest["duration_s"] and not row["error"]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["counts"] == {"complete": 3, "failed": 1}
    assert len(summary["rows"]) == 4
    assert (sweep_dir / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_rerun_redoes_only_failed_and_altered_jobs(swept, checkpoints):
    sweep_dir, _ = swept
    altered = sweep_dir / "0_epoch=0-step=64"
    with open(altered / "predictions.npy", "ab") as file:
        file.write(b"tampered")
    kept = {d: _files(sweep_dir / d) for d in ("1_epoch=1-step=128", "2_last")}
    failed_before = read_manifest(sweep_dir / "3_bad_epoch=9_copy")

    result = _sweep(checkpoints, sweep_dir)
    assert result.returncode == 1  # the corrupt checkpoint fails again

    assert {d: _files(sweep_dir / d) for d in kept} == kept  # not rewritten, not even touched
    redone = read_manifest(altered)
    assert redone["status"] == "complete"
    assert _files(altered)["predictions.npy"][1] == redone["outputs"][0]["sha256"]
    failed_after = read_manifest(sweep_dir / "3_bad_epoch=9_copy")
    assert failed_after["status"] == "failed" and failed_after["pid"] != failed_before["pid"]
    assert [r["status"] for r in _rows(sweep_dir)] == ["complete", "complete", "complete", "failed"]


@pytest.mark.slow
def test_summary_command_rebuilds_from_job_files(swept, tmp_path):
    sweep_dir = tmp_path / "copy"
    shutil.copytree(swept[0], sweep_dir)
    expected = _rows(sweep_dir)
    for name in ("summary.csv", "summary.json", "summary.png"):
        (sweep_dir / name).unlink()
    shutil.rmtree(sweep_dir / "2_last")  # never started: the plan still lists it
    running = sweep_dir / "1_epoch=1-step=128" / "manifest.json"
    running.write_text(json.dumps({**json.loads(running.read_text()), "status": "running"}))
    killed = sweep_dir / "4_epoch=5-step=9"  # killed before predicting: no manifest
    killed.joinpath(".hydra").mkdir(parents=True)
    killed.joinpath(".hydra", "overrides.yaml").write_text('- ckpt_path="/x/epoch=5-step=9.ckpt"\n')

    from litpredict.rundir.lock import RunLock

    script = Path(sys.executable).with_name("litpredict-summary")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "litpredict.sweep"]
    lock = RunLock.acquire(running.parent)  # still running: its process holds the directory
    try:
        result = subprocess.run([*command, str(sweep_dir)], capture_output=True, text=True)
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr
    rows = _rows(sweep_dir)
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0", "complete"),
        ("1", "running"),
        ("2", "pending"),
        ("3", "failed"),
        ("4", "missing"),
    ]
    # (the *_with_last agreement columns depend on which job is last: job 2 is gone here)
    assert _own(rows[0]) == _own(expected[0]) and _own(rows[3]) == _own(expected[3])
    assert rows[2]["checkpoint"] == expected[2]["checkpoint"]
    assert rows[4]["checkpoint"] == "/x/epoch=5-step=9.ckpt" and rows[4]["error"]
    assert (sweep_dir / "summary.png").stat().st_size > 0

    missing = run_cli("sweep", str(tmp_path / "nowhere"), cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "not a directory" in missing.stderr


@pytest.mark.slow
def test_job_failing_before_its_manifest_still_has_a_row(tmp_path):
    sweep_dir = tmp_path / "sweep"
    missing = tmp_path / "gone" / "epoch=1-step=2.ckpt"
    result = run_cli(
        "predict",
        "-m",
        f'ckpt_path="{missing}"',
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1 and "1 of 1 jobs failed" in result.stderr
    assert not (sweep_dir / "0_epoch=1-step=2" / "manifest.json").exists()
    (row,) = _rows(sweep_dir)
    assert (row["status"], row["checkpoint"]) == ("failed", str(missing))
    assert str(missing) in row["error"]


def _outputs(job_dir: Path) -> list[str]:
    return [o["sha256"] for o in read_manifest(job_dir)["outputs"]]


def _launched(tmp_path: Path, *overrides: str) -> tuple[Path, subprocess.CompletedProcess]:
    """A sweep into the default sweep directory: every job process must resolve the same one."""
    outputs = tmp_path / "outputs"
    result = run_cli(
        "predict", "-m", *overrides, cwd=tmp_path, env={"LITPREDICT_OUTPUTS": str(outputs)}
    )
    (sweep_dir,) = (outputs / "predict-multirun").iterdir()
    return sweep_dir, result


@pytest.mark.slow
def test_local_parallel_sweep_with_joblib(swept, checkpoints, tmp_path):
    sweep_dir, result = _launched(
        tmp_path,
        "hydra/launcher=local_joblib",
        "hydra.launcher.n_jobs=2",
        "datamodule.num_workers=1",  # DataLoader workers inside a loky worker
        f'ckpt_path=glob("{checkpoints}/epoch=*.ckpt")',
    )
    assert "Joblib.Parallel" in result.stderr + result.stdout
    names = ["0_epoch=0-step=64", "1_epoch=1-step=128"]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name[0].isdigit()) == names
    manifests = [read_manifest(sweep_dir / n) for n in names]
    assert [m["status"] for m in manifests] == ["complete", "complete"]
    assert manifests[0]["pid"] != manifests[1]["pid"]  # two worker processes
    assert manifests[0]["config"]["datamodule"]["num_workers"] == 1
    for name in names:  # the same predictions as the sequential sweep
        assert _outputs(sweep_dir / name) == _outputs(swept[0] / name)
    assert [r["status"] for r in _rows(sweep_dir)] == ["complete", "complete"]


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_inside_a_submitit_job(swept, checkpoints, tmp_path):
    sweep_dir, _ = _launched(
        tmp_path,
        "hydra/launcher=local_submitit",
        "trainer=ddp_cpu",
        f'ckpt_path=glob("{checkpoints}/epoch=1*.ckpt")',
    )
    manifest = read_manifest(sweep_dir / "0_epoch=1-step=128")
    assert manifest["status"] == "complete" and manifest["world_size"] == 2
    assert _outputs(sweep_dir / "0_epoch=1-step=128") == _outputs(swept[0] / "1_epoch=1-step=128")
    assert (sweep_dir / ".submitit").is_dir()
    assert [r["status"] for r in _rows(sweep_dir)] == ["complete"]


@pytest.mark.slow
def test_model_by_checkpoint_pairs(trained, tmp_path):
    root = trained["linear_regression"].parent
    sweep_dir = tmp_path / "sweep"
    run_cli(
        "predict",
        "-m",
        "experiment=linear_regression,image_classification",
        f'ckpt_path=glob("{root}/${{experiment}}/checkpoints/epoch=*.ckpt")',
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    rows = _rows(sweep_dir)
    assert [r["status"] for r in rows] == ["complete"] * 4
    assert [Path(r["checkpoint"]).parts[-3] for r in rows] == [
        "linear_regression",
        "linear_regression",
        "image_classification",
        "image_classification",
    ]
    # checkpoints of two runs: each job folder names its run
    assert [r["job_dir"].split("-")[0] for r in rows] == [
        "0_linear_regression",
        "1_linear_regression",
        "2_image_classification",
        "3_image_classification",
    ]
    assert [bool(r["mse"]) for r in rows] == [True, True, False, False]
    assert [bool(r["accuracy"]) for r in rows] == [False, False, True, True]
    linear, cnn = (np.load(sweep_dir / rows[i]["job_dir"] / "predictions.npy") for i in (0, 2))
    assert linear.shape == (int(rows[0]["num_predictions"]), 1)
    assert cnn.shape == (int(rows[2]["num_predictions"]),) and cnn.dtype.kind == "i"  # classes


@pytest.mark.slow
def test_single_run_writes_no_summary(checkpoints, tmp_path):
    run_dir = tmp_path / "runs" / "one"
    ckpt = f"ckpt_path={checkpoints}/last.ckpt"
    run_cli("predict", ckpt, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert read_manifest(run_dir)["status"] == "complete"
    assert not list(tmp_path.rglob("summary.*")) and not list(tmp_path.rglob("jobs.json"))


def test_slurm_launcher_requests_gpus_and_one_task_per_rank(tmp_path, monkeypatch):
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from litpredict.process import resolvers  # noqa: F401
    from litpredict.process.config_dir import config_dir

    overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp"]
    overrides += ["trainer.strategy=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
    overrides += ["ckpt_path=x.ckpt", f"hydra.sweep.dir={tmp_path}"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="predict"):
        cfg = compose("predict", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    params = dict(instantiate(cfg.hydra.launcher).params)
    # submitit refuses to build a SLURM executor without srun on PATH; sbatch is never called
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    # the same mapping of config keys to executor parameters as the plugin's launch()
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    sbatch = executor._executor._make_submission_file_text("python -m litpredict.predict", "x")
    for line in ["--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4", "--partition=gpu"]:
        assert f"#SBATCH {line}\n" in sbatch
    assert "\nsrun " in sbatch
