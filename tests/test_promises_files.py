"""Issue #22, classes 1-3, for every command they apply to: nothing a run directory (or a
folder a command runs in) holds runs as code; no command writes over a user's files or its
own inputs; a failed or interrupted run is redone by the same command, and an interrupt
ends every command as it ends predict (exit 130, ``interrupted``, no traceback).

Commands run in-process through their ``main(argv)`` (exit codes) where the CLI itself is
not under test; signals go to real subprocesses."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, compose_predict, predict_in_process, read_manifest, run_cli
from litpredict.process.errors import RunDirError
from litpredict.rundir import provenance
from run_dirs import write_sweep


@pytest.fixture(scope="module")
def complete_run(ckpt, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("promises_run")
    predict_in_process(root, "experiment=linear_regression", f"ckpt_path={ckpt}")
    return root / "run"


@pytest.fixture(autouse=True)
def _root_handlers():
    """``reproduce`` logs into its new run directory through root handlers: not past a test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (and folder) under ``path``, or ``path`` itself: what must not change."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {
        p.relative_to(path).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(path.rglob("*"))
    }


# -- 1. code from a run directory ----------------------------------------------------------

# Each way a repository's own config makes ``git status`` run a command: the marker it touches.
HOSTILE_WAYS = ("fsmonitor", "clean", "process", "hook", "hookspath")


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def hostile_repo(repo: Path, markers: Path, ways: tuple[str, ...] = HOSTILE_WAYS) -> str:
    """A checkout whose ``.git`` runs ``touch MARKERS/<way>`` in each of ``ways``, with its
    tracked files' stat data stale (so status compares content, through the filters); an
    honest history: its HEAD commit is returned and its files are unchanged."""
    repo.mkdir(parents=True)
    markers.mkdir(exist_ok=True)
    _git(repo, "init", "-q")
    (repo / "model.py").write_text("x = 1\n")  # compared before data.txt: a dying
    (repo / "zdata.txt").write_text("rows\n")  # process filter ends plain git's status
    (repo / ".gitattributes").write_text("model.py filter=evilclean\nzdata.txt filter=evilproc\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")

    def touch(way: str) -> str:
        return f"touch '{markers / way}'"

    settings = {
        "fsmonitor": {"core.fsmonitor": f"{touch('fsmonitor')}; false"},
        "clean": {
            "filter.evilclean.clean": f"{touch('clean')}; cat",
            "filter.evilclean.required": "true",
        },
        "process": {"filter.evilproc.process": f'sh -c "{touch("process")}"'},
        "hookspath": {"core.hooksPath": str(repo / ".git" / "evil-hooks")},
    }
    for way in ways:
        for key, value in settings.get(way, {}).items():
            _git(repo, "config", key, value)
    for way, folder in (("hook", "hooks"), ("hookspath", "evil-hooks")):
        if way in ways:
            hook = repo / ".git" / folder / "post-index-change"
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(f"#!/bin/sh\n{touch(way)}\n")
            hook.chmod(0o755)
    for name in ("model.py", "zdata.txt"):
        os.utime(repo / name, (1e9, 1e9))  # stale stat data: status reads the content
    return _git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("way", HOSTILE_WAYS)
def test_the_hostile_repository_does_run_code_under_plain_git(tmp_path, way) -> None:
    """The fixture is real: plain ``git status`` (in a copy: stat data differs) runs it."""
    hostile_repo(tmp_path / "repo", tmp_path / "markers", ways=(way,))
    shutil.copytree(tmp_path / "repo", tmp_path / "copy", symlinks=True)
    subprocess.run(["git", "status"], cwd=tmp_path / "copy", capture_output=True)
    assert [p.name for p in (tmp_path / "markers").iterdir()] == [way]


@pytest.mark.parametrize("way", HOSTILE_WAYS)
def test_git_state_runs_nothing_a_repository_configures(tmp_path, way) -> None:
    head = hostile_repo(tmp_path / "repo", tmp_path / "markers", ways=(way,))
    assert provenance.git_state(tmp_path / "repo") == {"commit": head, "dirty": False}
    (tmp_path / "repo" / "model.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path / "repo") == {"commit": head, "dirty": True}
    assert list((tmp_path / "markers").iterdir()) == []


def test_an_honest_repository_keeps_its_provenance(tmp_path) -> None:
    """Stale stat data with unchanged content is clean; an edit is dirty; a filter of the
    user's own (global) config still applies."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    head = _git(repo, "rev-parse", "HEAD")
    os.utime(repo / "a.txt", (1e9, 1e9))
    assert provenance.git_state(repo) == {"commit": head, "dirty": False}
    (repo / "a.txt").write_text("b\n")
    assert provenance.git_state(repo) == {"commit": head, "dirty": True}


def _ensemble_main(argv: list[str]) -> int:
    from litpredict.ensemble import main

    return main(argv)


def _reproduce_main(argv: list[str]) -> int:
    from litpredict.reproduce import main

    return main(argv)


@pytest.mark.parametrize("command", ["predict", "ensemble", "reproduce", "reproduce-in-cwd"])
def test_no_command_runs_what_a_repository_configures(
    command, ckpt, complete_run, tmp_path, monkeypatch
) -> None:
    """predict and ensemble started inside a hostile checkout; reproduce of a run whose
    manifest's ``cwd`` names one, from elsewhere (it stays there) and, asked to, in it."""
    repo, markers = tmp_path / "repo", tmp_path / "markers"
    head = hostile_repo(repo, markers)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if command == "predict":
        monkeypatch.chdir(repo)
        manifest = predict_in_process(tmp_path, "experiment=linear_regression", f"ckpt_path={ckpt}")
        assert manifest["git"] == {"commit": head, "dirty": False}
    elif command == "ensemble":
        write_sweep(tmp_path / "sweep", [np.arange(4.0), np.arange(4.0)])
        monkeypatch.chdir(repo)
        assert _ensemble_main([str(tmp_path / "sweep"), "--out", str(tmp_path / "ens")]) == 0
        assert read_manifest(tmp_path / "ens")["git"] == {"commit": head, "dirty": False}
    else:
        run = shutil.copytree(complete_run, tmp_path / "run")
        manifest = read_manifest(run)
        manifest["cwd"] = str(repo)
        (run / "manifest.json").write_text(json.dumps(manifest))
        monkeypatch.chdir(elsewhere)
        argv = [str(run), f"hydra.run.dir={tmp_path / 'again'}"]
        asked = command == "reproduce-in-cwd"
        assert _reproduce_main([*argv, *(["--in-recorded-cwd"] if asked else [])]) == 0
        assert Path.cwd() == (repo if asked else elsewhere)
        recorded = read_manifest(tmp_path / "again")
        assert recorded["cwd"] == str(repo if asked else elsewhere)
        assert recorded["git"] == ({"commit": head, "dirty": False} if asked else None)
    assert sorted(p.name for p in markers.iterdir()) == []


def test_reproduce_reads_relative_data_of_the_recorded_cwd_without_going_there(
    ckpt, tmp_path, monkeypatch
) -> None:
    """A relative ``datamodule.path`` means the recorded cwd's file, read as data, even
    where the current directory holds another file of that name."""
    then, now = tmp_path / "then", tmp_path / "now"
    for folder, seed in ((then, 0), (now, 1)):
        folder.mkdir()
        rows = np.random.default_rng(seed).normal(size=(50, 10)).astype(np.float32)
        np.save(folder / "x.npy", rows)
    monkeypatch.chdir(then)
    overrides = ["model=linear", "datamodule=array_file", "datamodule.path=x.npy"]
    predict_in_process(tmp_path, *overrides, f"ckpt_path={ckpt}")
    monkeypatch.chdir(now)
    assert _reproduce_main([str(tmp_path / "run"), f"hydra.run.dir={tmp_path / 'again'}"]) == 0
    assert Path.cwd() == now
    again = read_manifest(tmp_path / "again")
    assert again["config"]["datamodule"]["path"] == str(then / "x.npy")
    assert again["outputs"] == read_manifest(tmp_path / "run")["outputs"]


# -- 2. a user's files ---------------------------------------------------------------------


def _checkpoint(path: Path, epoch: int) -> Path:
    weight = torch.full((2, 3), float(epoch))
    torch.save({"epoch": epoch, "global_step": 10 * epoch, "state_dict": {"w": weight}}, path)
    return path


@pytest.fixture
def inputs(tmp_path) -> dict[str, list[Path]]:
    """Each command's inputs: a sweep of two complete jobs, two runs, two checkpoints."""
    jobs = write_sweep(tmp_path / "sweep", [np.arange(6.0), np.arange(6.0) + 1])
    (tmp_path / "ckpts").mkdir()
    ckpts = [_checkpoint(tmp_path / "ckpts" / f"epoch={e}.ckpt", e) for e in (0, 1)]
    return {"ensemble": [tmp_path / "sweep"], "compare": jobs, "average": ckpts}


def _run(command: str, inputs: dict[str, list[Path]], out: Path, *extra: str) -> int:
    from litpredict import average, compare, ensemble

    main = {"ensemble": ensemble.main, "compare": compare.main, "average": average.main}[command]
    return main([*map(str, inputs[command]), "--out", str(out), *extra])


def _users_folder(tmp_path: Path, inputs) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    np.save(folder / "predictions.npy", np.array([42.0]))  # the user's own predictions
    (folder / "notes.txt").write_text("mine")
    return folder


def _training_run(tmp_path: Path, inputs) -> Path:
    """A training run of another tool (Lightning-Hydra-Template style): no manifest."""
    run = tmp_path / "train_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text('{"lr": 0.1}')
    _checkpoint(run / "checkpoints" / "last.ckpt", 9)
    return run


def _leftover_names(tmp_path: Path, inputs) -> Path:
    """A user's folder that happens to use litpredict's leftover names."""
    folder = tmp_path / "mine"
    (folder / ".staging").mkdir(parents=True)
    (folder / ".staging" / "draft.txt").write_text("mine")
    (folder / ".shards").mkdir()
    (folder / ".shards" / "part0").write_text("mine")
    (folder / ".notes.tmp").write_text("mine")
    return folder


def _another_tools_manifest(tmp_path: Path, inputs) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "my web app", "icons": []}')
    return folder


def _a_file(tmp_path: Path, inputs) -> Path:
    return _checkpoint(tmp_path / "other.ckpt", 7)


def _a_folder_holding_its_inputs(tmp_path: Path, inputs) -> Path:
    return tmp_path  # holds the sweep, the runs, the checkpoints


def _its_first_input(tmp_path: Path, inputs) -> Path:
    return inputs["compare"][0]  # run A of compare; a job of the sweep


def _inside_its_input(tmp_path: Path, inputs) -> Path:
    return inputs["compare"][0] / "out"


FOLDER_CASES = [
    _users_folder,
    _training_run,
    _leftover_names,
    _another_tools_manifest,
    _a_file,
    _a_folder_holding_its_inputs,
    _its_first_input,
    _inside_its_input,
]


@pytest.mark.parametrize("command", ["ensemble", "compare"])
@pytest.mark.parametrize("case", FOLDER_CASES, ids=lambda c: c.__name__.strip("_"))
def test_a_folder_output_never_writes_over_a_users_files_or_its_inputs(
    tmp_path, inputs, command, case, capsys
) -> None:
    out = case(tmp_path, inputs)
    before = _snapshot(tmp_path)
    assert _run(command, inputs, out) == 2
    assert _snapshot(tmp_path) == before  # nothing written, nothing removed
    assert "fix:" in capsys.readouterr().err


def _its_own_input(tmp_path: Path, inputs) -> Path:
    return inputs["average"][1]


def _its_input_by_another_name(tmp_path: Path, inputs) -> Path:
    link = tmp_path / "link.ckpt"
    link.symlink_to(inputs["average"][0])
    return tmp_path / "ckpts" / ".." / "link.ckpt"


def _training_config(tmp_path: Path, inputs) -> Path:
    return _training_run(tmp_path, inputs) / "config.json"


def _a_folder(tmp_path: Path, inputs) -> Path:
    return _users_folder(tmp_path, inputs)


@pytest.mark.parametrize(
    "case, force",
    [
        (_a_file, False),
        (_training_config, False),
        (_its_own_input, False),
        (_its_own_input, True),
        (_its_input_by_another_name, True),
        (_a_folder, True),
    ],
    ids=lambda x: x.__name__.strip("_") if callable(x) else f"force={x}",
)
def test_a_file_output_replaces_no_file_unasked_and_never_an_input(
    tmp_path, inputs, case, force, capsys
) -> None:
    out = case(tmp_path, inputs)
    before = _snapshot(tmp_path)
    assert _run("average", inputs, out, *(["--force"] if force else [])) == 2
    assert _snapshot(tmp_path) == before
    assert "fix:" in capsys.readouterr().err


def test_force_replaces_a_file_that_is_not_an_input(tmp_path, inputs) -> None:
    other = _a_file(tmp_path, inputs)
    assert _run("average", inputs, other, "--force") == 0
    averaged = torch.load(other, weights_only=True)["state_dict"]["w"]
    assert torch.equal(averaged, torch.full((2, 3), 0.5))


@pytest.mark.parametrize("case", [_leftover_names, _another_tools_manifest, _users_folder])
def test_predict_keeps_a_folder_that_never_held_a_run(ckpt, tmp_path, case) -> None:
    """Leftover names (``.staging/``, ``.shards/``, ``.*.tmp``) and ``manifest.json`` are
    litpredict's only beside a litpredict manifest: otherwise refused, never cleared."""
    folder = case(tmp_path, None)
    before = _snapshot(folder)
    with pytest.raises(RunDirError, match="no litpredict manifest lists"):
        predict_in_process(tmp_path, "model=linear", f"ckpt_path={ckpt}", f"hydra.run.dir={folder}")
    assert _snapshot(folder) == before


def test_train_never_writes_over_a_users_config(tmp_path) -> None:
    from litpredict.process.job import Job
    from litpredict.train import train

    folder = _training_run(tmp_path, None)
    before = _snapshot(folder)
    config = compose_predict("trainer.max_epochs=1", run_dir=folder, config_name="train")
    with pytest.raises(RunDirError, match=r"config\.json"):
        train(config, Job.from_hydra())
    assert _snapshot(folder) == before


@pytest.mark.parametrize("command", ["predict", "train"])
def test_the_cli_refuses_a_users_folder_before_hydra_writes_there(ckpt, tmp_path, command):
    """The commands' Hydra callback: nothing, not even ``.hydra/``, lands in the folder."""
    if command == "train":
        folder, overrides = _training_run(tmp_path, None), ["trainer.max_epochs=1"]
    else:
        folder, overrides = _leftover_names(tmp_path, None), ["model=linear", f"ckpt_path={ckpt}"]
    before = _snapshot(folder)
    result = run_cli(command, *overrides, f"hydra.run.dir={folder}", cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert "no litpredict manifest lists" in result.stderr and "Traceback" not in result.stderr
    assert _snapshot(folder) == before


def test_each_command_writes_only_its_own_kind_of_run(ckpt, complete_run, tmp_path, inputs):
    """An ensemble, a comparison, a prediction and a training never share a folder."""
    from litpredict.process.job import Job
    from litpredict.train import train

    assert _run("ensemble", inputs, tmp_path / "ens") == 0
    assert _run("compare", inputs, tmp_path / "cmp") == 0
    assert _run("compare", inputs, tmp_path / "cmp") == 0  # its own comparison, done again
    assert read_manifest(tmp_path / "cmp")["kind"] == "compare"
    before = {name: _snapshot(tmp_path / name) for name in ("ens", "cmp")}
    assert _run("compare", inputs, tmp_path / "ens") == 2
    assert _run("ensemble", inputs, tmp_path / "cmp") == 2
    with pytest.raises(RunDirError, match="holds an ensemble run"):
        predict_in_process(
            tmp_path, "model=linear", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'ens'}"
        )
    config = compose_predict("trainer.max_epochs=1", run_dir=tmp_path / "cmp", config_name="train")
    with pytest.raises(RunDirError, match="holds a compare run"):
        train(config, Job.from_hydra())
    assert {name: _snapshot(tmp_path / name) for name in ("ens", "cmp")} == before


def test_a_comparison_beside_its_runs_is_no_job_of_their_sweep(tmp_path, inputs) -> None:
    from litpredict.compare import main
    from litpredict.sweep.summary import collect

    run_a, run_b = inputs["compare"]
    assert main([str(run_a), str(run_b)]) == 0  # default: compare_<A>_vs_<B> beside run B
    assert (run_b.parent / f"compare_{run_a.name}_vs_{run_b.name}" / "manifest.json").is_file()
    assert [row["job_dir"] for row in collect(run_b.parent)] == [run_a.name, run_b.name]


# -- 3. redo: a failed or interrupted run is redone by the same command --------------------

# Runs ``litpredict.<command>.main(argv)`` with ``module.name`` held at its start (a marker
# file says so) until a signal arrives: the signal lands mid-work, deterministically.
_PAUSED = """
import importlib, pathlib, sys, time
module, name, ready, command, *argv = sys.argv[1:]
target = importlib.import_module(module)
original = getattr(target, name)
def paused(*args, **kwargs):
    pathlib.Path(ready).touch()
    time.sleep(300)
    return original(*args, **kwargs)
setattr(target, name, paused)
sys.exit(importlib.import_module(f"litpredict.{command}").main(argv))
"""
PAUSE_AT = {
    "ensemble": ("litpredict.results.ensembles", "combine"),
    "compare": ("litpredict.results.comparison", "render"),
    "average": ("litpredict.results.averaging", "average_states"),
}


def _paused(command: str, argv: list[str], tmp_path: Path) -> subprocess.Popen:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", _PAUSED, *PAUSE_AT[command], str(ready), command, *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never reached its pause"
        time.sleep(0.05)
    return proc


def _argv(command: str, inputs: dict[str, list[Path]], out: Path) -> list[str]:
    return [*map(str, inputs[command]), "--out", str(out)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["ensemble", "compare", "average"])
def test_an_interrupt_says_interrupted_and_the_same_command_redoes_it(
    tmp_path, inputs, command, sig
) -> None:
    out = tmp_path / ("avg.ckpt" if command == "average" else "out")
    proc = _paused(command, _argv(command, inputs, out), tmp_path)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    if command == "average":
        assert not out.exists() and not list(tmp_path.glob(".avg.ckpt.*"))
    else:
        assert read_manifest(out)["status"] == "interrupted"
    assert _run(command, inputs, out) == 0
    if command != "average":
        manifest = read_manifest(out)
        assert manifest["status"] == "complete" and manifest["redone_after"] == "interrupted"
        assert not (out / ".staging").exists() and not list(out.glob(".*.tmp"))


def test_a_killed_ensemble_is_redone_by_the_same_command(tmp_path, inputs) -> None:
    """SIGKILL: the manifest still says running, but nothing holds the folder's lock."""
    out = tmp_path / "ens"
    proc = _paused("ensemble", _argv("ensemble", inputs, out), tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert read_manifest(out)["status"] == "running"
    assert _run("ensemble", inputs, out) == 0
    assert read_manifest(out)["redone_after"] == "running"


def test_a_failed_ensemble_is_redone_by_the_same_command(tmp_path, inputs, capsys) -> None:
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(5))  # one short: the sweep predicted 6 samples
    argv = [*_argv("ensemble", inputs, tmp_path / "ens"), "--labels", str(labels)]
    assert _ensemble_main(argv) == 2
    assert "holds 5 labels for 6 predictions" in capsys.readouterr().err
    first = tmp_path / "ens" / "manifest.json"  # labels are checked before anything is written
    assert not first.exists() or read_manifest(tmp_path / "ens")["status"] == "failed"
    np.save(labels, np.arange(6.0))  # fixed in place: the same command again
    assert _ensemble_main(argv) == 0
    manifest = read_manifest(tmp_path / "ens")
    assert manifest["status"] == "complete" and manifest["metrics"]["mse"] == pytest.approx(0.25)
    assert _ensemble_main(argv) == 2  # a complete ensemble is never overwritten
    assert "never overwritten" in capsys.readouterr().err


def test_a_failed_comparison_is_redone_by_the_same_command(tmp_path, inputs, monkeypatch, capsys):
    import errno

    from litpredict.results import comparison

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(comparison, "render", full)
    assert _run("compare", inputs, tmp_path / "cmp") == 2  # a message, not a traceback
    assert "no space left on the device" in capsys.readouterr().err
    assert read_manifest(tmp_path / "cmp")["status"] == "failed"
    monkeypatch.undo()
    assert _run("compare", inputs, tmp_path / "cmp") == 0
    assert read_manifest(tmp_path / "cmp")["status"] == "complete"
    assert (tmp_path / "cmp" / "compare.png").is_file()


def test_a_failed_training_is_trained_again_and_a_complete_one_kept(tmp_path, monkeypatch):
    """An interrupted training leaves ``interrupted``; the same command trains again from
    the start (no checkpoint of the first attempt left); a complete one is never redone."""
    from litpredict.checkpoint import model as model_module
    from litpredict.process.errors import RunInterrupted
    from litpredict.process.job import Job
    from litpredict.train import train

    run_dir = tmp_path / "train"
    (run_dir / "checkpoints").mkdir(parents=True)
    overrides = ("experiment=linear_regression", "trainer.max_epochs=1")
    real = model_module.training_model

    def interrupted(*args, **kwargs):
        (run_dir / "checkpoints" / "epoch=0-step=1.ckpt").write_bytes(b"an attempt's")
        raise RunInterrupted("SIGTERM")

    monkeypatch.setattr(model_module, "training_model", interrupted)
    with pytest.raises(RunInterrupted):
        train(compose_predict(*overrides, run_dir=run_dir, config_name="train"), Job.from_hydra())
    first = read_manifest(run_dir)
    assert first["status"] == "interrupted" and first["kind"] == "train"
    assert [o["path"] for o in first["outputs"]] == [
        "checkpoints/epoch=0-step=1.ckpt",
        "config.json",
    ]
    monkeypatch.setattr(model_module, "training_model", real)
    train(compose_predict(*overrides, run_dir=run_dir, config_name="train"), Job.from_hydra())
    done = read_manifest(run_dir)
    assert done["status"] == "complete" and done["redone_after"] == "interrupted"
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["epoch=0-step=64.ckpt", "last.ckpt"]
    with pytest.raises(RunDirError, match="complete train run"):
        train(compose_predict(*overrides, run_dir=run_dir, config_name="train"), Job.from_hydra())
