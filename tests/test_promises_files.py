"""Issue #22, classes 1-3, for every command they apply to: nothing a run directory (or a
folder a command runs in) holds runs as code; no command writes over a user's files or its
own inputs; a failed or interrupted run is redone by the same command, and an interrupt
ends every command as it ends predict (exit 130, ``interrupted``, no traceback).

Commands run in-process through their ``main(argv)`` (exit codes) where the CLI itself is
not under test; signals go to real subprocesses."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import compose_predict, predict_in_process
from litpredict.rundir import provenance


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A linear-regression checkpoint from one epoch of ``train`` (in-process)."""
    from litpredict.process.job import Job
    from litpredict.train import train

    root = tmp_path_factory.mktemp("promises_train")
    config = compose_predict(
        "experiment=linear_regression",
        "trainer.max_epochs=1",
        run_dir=root / "train",
        config_name="train",
    )
    train(config, Job.from_hydra())
    return root / "train" / "checkpoints" / "last.ckpt"


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
