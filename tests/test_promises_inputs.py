"""Every command keeps predict's promises (issue #22, classes 4-9), each closed at its root.

4. rows pair by sample id (or the data they read), never by position alone;
5. file names from a glob are data: never resolved as interpolations;
6. the launch environment: stray rank variables, processes repeating one run;
7. numbers: complex tensors averaged as complex;
8. raw errors: each bad input a problem and a fix, a non-zero exit, nothing complete;
9. the sweep directory: what counts as a job, and a job whose lock owner is dead.

In-process (the commands' ``main(argv)``) where the CLI is not under test; subprocesses
where the command line or the process environment is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, read_manifest, run_cli
from litpredict import compare as compare_command
from litpredict import ensemble as ensemble_command
from run_dirs import write_run, write_sweep


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("promises_data") / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((37, 10), dtype=np.float32))
    return path


def _predict_args(ckpt: Path, features: Path, run_dir: Path) -> list[str]:
    return [
        f"ckpt_path={ckpt}",
        "experiment=linear_regression",
        "datamodule=array_file",
        f"datamodule.path={features}",
        f"hydra.run.dir={run_dir}",
    ]


def _with_data(run_dir: Path, data: list[dict]) -> Path:
    """The run's manifest as if it had read ``data`` (the fingerprints predict records)."""
    manifest = read_manifest(run_dir)
    manifest["data"] = data
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


# -- 4. ids: rows pair by sample, never by position alone ------------------------------------

CATS = [f"cat_{i:03d}.png" for i in range(6)]
DOGS = [f"dog_{100 + i:03d}.png" for i in range(6)]
SHUFFLE = [3, 0, 5, 1, 4, 2]


def _two_runs(tmp_path: Path, case: str) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """Runs A and B of one hostile ``case``, and their predictions."""
    a = np.array([0, 1, 2, 3, 4, 5], np.int64)
    b = np.array([0, 1, 2, 3, 4, 0], np.int64)
    sweep = tmp_path / "sweep"
    if case == "another order":  # B predicted A's samples, listed in another order
        first = write_run(sweep / "0_a", a, ids=CATS)
        second = write_run(sweep / "1_b", b[SHUFFLE], ids=[CATS[i] for i in SHUFFLE])
    elif case == "other ids":  # cat_003.png would get dog_103.png's prediction
        first = write_run(sweep / "0_a", a, ids=CATS)
        second = write_run(sweep / "1_b", b, ids=CATS[:3] + DOGS[3:])
    elif case == "ids and none":
        first = write_run(sweep / "0_a", a, ids=CATS)
        second = write_run(sweep / "1_b", b)
    elif case == "other data":  # no ids: the data fingerprints say which samples
        first = _with_data(write_run(sweep / "0_a", a), [{"path": "/d/x.npy", "sha256": "1"}])
        second = _with_data(write_run(sweep / "1_b", b), [{"path": "/d/y.npy", "sha256": "2"}])
    else:
        raise ValueError(case)
    return first, second, a, b


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("other ids", ["3 of 0_a's ids are not in 1_b's", "cat_003.png"]),
        ("ids and none", ["0_a names its samples (ids.txt) and 1_b does not"]),
        ("other data", ["predicted different data", "/d/x.npy vs /d/y.npy"]),
    ],
)
@pytest.mark.parametrize("command", ["compare", "ensemble"])
def test_runs_of_other_samples_are_refused_naming_the_difference(
    tmp_path, capsys, command, case, named
):
    first, second, _, _ = _two_runs(tmp_path, case)
    out = tmp_path / "out"
    if command == "compare":
        code = compare_command.main([str(first), str(second), "--out", str(out)])
    else:
        code = ensemble_command.main([str(first.parent), "--out", str(out)])
    error = capsys.readouterr().err
    assert code == 2
    for text in named:
        assert text in error
    assert "fix:" in error
    assert not (out / "compare.json").exists() and not (out / "predictions.npy").exists()


def test_compare_pairs_the_same_samples_in_another_order_by_id(tmp_path, capsys):
    first, second, a, b = _two_runs(tmp_path, "another order")
    out = tmp_path / "out"
    assert compare_command.main([str(first), str(second), "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["paired_by"] == "id"
    assert result["outputs"]["prediction"] == {"agreement": (a == b).mean()}  # 5 of 6 agree
    assert [(r["id"], r["a"], r["b"]) for r in result["changed_most"]] == [("cat_005.png", 5, 0)]
    assert "paired by id" in capsys.readouterr().out


def test_an_ensemble_combines_members_listing_their_samples_in_another_order_by_id(tmp_path):
    first, _, _, b = _two_runs(tmp_path, "another order")
    third = write_run(tmp_path / "sweep" / "2_c", b, ids=CATS)
    out = tmp_path / "ens"
    assert ensemble_command.main([str(first.parent), "--out", str(out)]) == 0
    # per sample: a, b, b -> the majority is b's class for every sample
    np.testing.assert_array_equal(np.load(out / "predictions.npy"), b)
    assert (out / "ids.txt").read_text().splitlines() == CATS
    assert third.is_dir()


def test_the_summary_has_no_agreement_for_a_job_of_other_samples(tmp_path):
    from litpredict.sweep.summary import write_summary

    write_run(tmp_path / "sweep" / "0_a", np.array([0, 1, 2, 3, 4, 5]), ids=CATS[:3] + DOGS[3:])
    write_run(tmp_path / "sweep" / "1_b", np.array([0, 1, 2, 3, 4, 0]), ids=CATS)
    rows = write_summary(tmp_path / "sweep", plot=False)["rows"]
    assert rows[0]["agreement_with_last"] is None  # not 5/6: three rows are other samples
    assert rows[1]["agreement_with_last"] == 1.0


# -- 5. file names are data ---------------------------------------------------------------


@pytest.mark.slow
def test_a_sweep_over_files_named_like_interpolations_keeps_their_names_literal(
    ckpt, tmp_path
) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    names = ["x${y}.ckpt", "leak${oc.env:SECRET_VAR}.ckpt"]
    for name in names:
        shutil.copy(ckpt, folder / name)
    secret = "s3cr3t-value-1f2e"
    sweep = tmp_path / "sweep"
    done = run_cli(
        "predict",
        "-m",
        f"ckpt_path=glob({folder}/*.ckpt)",
        "experiment=linear_regression",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env={"SECRET_VAR": secret},
        check=False,
    )
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-3000:]
    assert "Traceback" not in console
    expected = {str(folder / name) for name in names}
    summary = json.loads((sweep / "summary.json").read_text())
    assert {r["checkpoint"] for r in summary["rows"]} == expected
    assert {r["status"] for r in summary["rows"]} == {"complete"}
    for row in summary["rows"]:
        job_dir = sweep / row["job_dir"]
        assert "${" not in job_dir.name  # a folder name Hydra's own config cannot resolve
        manifest = read_manifest(job_dir)
        assert manifest["status"] == "complete"
        assert manifest["checkpoint"]["path"] == manifest["config"]["ckpt_path"]
        assert manifest["checkpoint"]["path"] in expected
        typed = [o for o in manifest["overrides"] if o.startswith("ckpt_path=")]
        assert typed and "\\${" in typed[0]  # as typed: a shell can repeat it literally
    leak = next(r for r in summary["rows"] if "leak" in r["checkpoint"])
    again = run_cli(  # a manifest is data: its literal names are not resolved when re-run
        "reproduce",
        str(sweep / leak["job_dir"]),
        f"hydra.run.dir={tmp_path / 'again'}",
        cwd=tmp_path,
        env={"SECRET_VAR": secret},
        check=False,
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "reproduced" in again.stdout
    console += again.stdout + again.stderr
    assert secret not in console
    for path in [*sweep.rglob("*"), *(tmp_path / "again").rglob("*")]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
        assert secret not in path.name


# -- 6. the launch environment ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"RANK": "1", "WORLD_SIZE": "1"}, "RANK=1 with WORLD_SIZE=1"),
        ({"LOCAL_RANK": "1"}, "LOCAL_RANK=1 is set but WORLD_SIZE is not set"),
        ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 with WORLD_SIZE=2"),
    ],
)
def test_stray_rank_variables_stop_predict_naming_them(ckpt, features, tmp_path, variables, named):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    run_dir = tmp_path / "run"
    result = run_cli(
        "predict",
        *_predict_args(ckpt, features, run_dir),
        cwd=tmp_path,
        env={**env, **variables},
        check=False,
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"inconsistent launch environment: {named}" in result.stderr
    assert "fix: unset the stray variables" in result.stderr
    assert not run_dir.exists()  # stopped before anything was written


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({}, None),
        ({"RANK": "0"}, None),
        ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, None),
        ({"LOCAL_RANK": "1", "WORLD_SIZE": "2"}, None),  # Lightning's own ddp launcher
        ({"RANK": "2"}, "RANK=2 is set but WORLD_SIZE is not"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}, "LOCAL_RANK=1 above RANK=0"),
        ({"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "4", "RANK": "2"}, "2"),
    ],
)
def test_which_rank_variables_are_consistent(variables, problem) -> None:
    from litpredict.process.ranks import LaunchError, check_launch_environment, launch_problem

    found = launch_problem(variables)
    if problem is None:
        assert found is None
        check_launch_environment(variables)
    else:
        assert problem in found
        with pytest.raises(LaunchError, match="inconsistent launch environment"):
            check_launch_environment(variables)


@pytest.mark.slow
@pytest.mark.ddp
def test_torchrun_processes_that_would_each_repeat_the_run_are_refused(
    ckpt, features, tmp_path
) -> None:
    import subprocess

    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
    command += ["-m", "litpredict.predict", *_predict_args(ckpt, features, run_dir)]
    command += ["trainer=cpu"]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode != 0
    assert "2 processes were launched (WORLD_SIZE=2" in result.stderr
    assert "trainer.strategy=ddp" in result.stderr  # the fix
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "failed"
    assert not (run_dir / "predictions.npy").exists()


# -- 7. numbers ------------------------------------------------------------------------------


def _state_checkpoint(path: Path, epoch: int, state, **extra) -> Path:
    """A checkpoint as Lightning lays it out, with the given ``state_dict`` (any value)."""
    import torch

    torch.save({"epoch": epoch, "global_step": 10 * epoch, "state_dict": state, **extra}, path)
    return path


@pytest.mark.parametrize("ema", [None, 0.5])
def test_average_keeps_complex_tensors_complex_and_integer_buffers_whole(tmp_path, ema) -> None:
    import torch

    from litpredict import average

    weights = [torch.tensor([1 + 2j, -3 + 0.5j]), torch.tensor([3 - 2j, 1 + 4.5j])]
    paths = [
        _state_checkpoint(
            tmp_path / f"epoch={e}.ckpt",
            e,
            {"spectrum": w, "tracked": torch.tensor(7 + e), "scale": torch.tensor([float(e)])},
        )
        for e, w in enumerate(weights)
    ]
    out = tmp_path / "avg.ckpt"
    args = [*map(str, paths), "--out", str(out)] + ([] if ema is None else ["--ema", str(ema)])
    assert average.main(args) == 0
    state = torch.load(out, weights_only=True)["state_dict"]
    expected = (weights[0] + weights[1]) / 2  # EMA 0.5 of two inputs is the mean too
    assert state["spectrum"].dtype == torch.complex64
    torch.testing.assert_close(state["spectrum"], expected)
    assert state["tracked"].dtype == torch.int64 and int(state["tracked"]) == 8  # the last's
    torch.testing.assert_close(state["scale"], torch.tensor([0.5]))


# -- 8. raw errors: each bad input is a problem and a fix -------------------------------------


def _bomb(path: Path, megabytes: int = 128) -> Path:
    """A torch.save checkpoint of a zero tensor, its members deflated: ~``megabytes`` MB
    that inflate from a file of a few hundred KB (what a hostile download looks like)."""
    import zipfile

    import torch

    plain = path.with_suffix(".plain")
    tensor = torch.zeros(megabytes << 18)
    torch.save({"epoch": 0, "global_step": 0, "state_dict": {"w": tensor}}, plain)
    del tensor
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as bomb:
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename)
            member.compress_type = zipfile.ZIP_DEFLATED
            with source.open(info) as reader, bomb.open(member, "w", force_zip64=True) as writer:
                while chunk := reader.read(1 << 22):
                    writer.write(chunk)
    plain.unlink()
    assert path.stat().st_size < megabytes << 12  # inflates more than 256 times
    return path


AVERAGE_CASES = {
    "a state_dict entry that is no tensor": (
        {"w": "tensor", "note": "text"},
        "state_dict entry 'note' is str, not a tensor",
    ),
    "a state_dict that is a list": ([1, 2], "its state_dict is a list"),
    "a state_dict that is None": (None, "its state_dict is None"),
}


@pytest.mark.parametrize("case", [*AVERAGE_CASES, "--out a directory", "a zip bomb"])
def test_average_refuses_bad_inputs_with_a_problem_and_a_fix(tmp_path, capsys, case) -> None:
    import torch

    from litpredict import average

    good = _state_checkpoint(tmp_path / "epoch=0.ckpt", 0, {"w": torch.ones(3)})
    out = tmp_path / "avg.ckpt"
    if case in AVERAGE_CASES:
        state, message = AVERAGE_CASES[case]
        if isinstance(state, dict):
            state = {k: torch.zeros(3) if v == "tensor" else v for k, v in state.items()}
        bad = _state_checkpoint(tmp_path / "epoch=1.ckpt", 1, state)
    elif case == "--out a directory":
        bad, message = _state_checkpoint(tmp_path / "epoch=1.ckpt", 1, {"w": torch.zeros(3)}), ""
        out = tmp_path / "folder"
        out.mkdir()
        message = "is a directory"
    else:
        bad, message = _bomb(tmp_path / "epoch=1.ckpt"), "would inflate to 128.0 MB"
    assert average.main([str(good), str(bad), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error and "fix:" in error
    assert "Traceback" not in error
    assert not out.is_file()


PREDICT_CASES = {
    "hyper_parameters a list": ({"hyper_parameters": [1, 2]}, "hyper_parameters are a list"),
    "hyper_parameters a string": ({"hyper_parameters": "lr=1"}, "hyper_parameters are a str"),
    "a state_dict that is a list": ({"state_dict": [1, 2]}, "its state_dict is a list"),
    "a state_dict that is None": ({"state_dict": None}, "its state_dict is None"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", [*PREDICT_CASES, "a zip bomb"])
def test_predict_refuses_a_malformed_checkpoint_before_using_it(
    ckpt, features, tmp_path, case
) -> None:
    import torch

    from conftest import predict_in_process
    from litpredict.process.errors import CheckpointError

    bad = tmp_path / "bad.ckpt"
    if case in PREDICT_CASES:
        entries, message = PREDICT_CASES[case]
        torch.save({**torch.load(ckpt, weights_only=True), **entries}, bad)
    else:
        bad, message = _bomb(bad), "would inflate to 128.0 MB"
    run_dir = tmp_path / "run"
    with pytest.raises(CheckpointError, match="fix:") as raised:
        predict_in_process(tmp_path, *_predict_args(bad, features, run_dir))
    assert message in raised.value.problem
    assert read_manifest(run_dir)["status"] == "failed"
    assert not (run_dir / "predictions.npy").exists()


class RunsCode:
    """An object whose unpickling would leave a marker file: proof that nothing unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _object_member(run_dir: Path, marker: Path) -> Path:
    """``run_dir``'s predictions.npy replaced by an object array (its hash updated)."""
    from litpredict.rundir.hashing import sha256_file

    array = np.empty(6, dtype=object)
    array[:] = [RunsCode(marker)] * 6
    np.save(run_dir / "predictions.npy", array, allow_pickle=True)
    manifest = read_manifest(run_dir)
    manifest["outputs"][0]["sha256"] = sha256_file(run_dir / "predictions.npy")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


def _mount(path: Path, options: str) -> bool:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
    )
    return mounted.returncode == 0


@pytest.mark.parametrize("command", ["ensemble", "compare"])
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("an object-dtype member", "holds Python objects (dtype object)"),
        ("a read-only disk", "the filesystem is read-only"),
        ("a full disk", "no space left on the device"),
        ("--labels a 0-d array", "holds a single value (a 0-d array)"),
    ],
)
def test_ensemble_and_compare_refuse_bad_inputs_with_a_problem_and_a_fix(
    tmp_path, capsys, command, case, message
) -> None:
    import subprocess

    sweep = tmp_path / "sweep"
    rng = np.random.default_rng(0)
    first = write_run(sweep / "0_a", rng.normal(size=(64, 4)).astype(np.float32))
    second = write_run(sweep / "1_b", rng.normal(size=(64, 4)).astype(np.float32))
    out = tmp_path / "out"
    marker = tmp_path / "unpickled"
    extra: list[str] = []
    if case == "an object-dtype member":
        _object_member(second, marker)
    elif case in ("a read-only disk", "a full disk"):
        options = "ro,size=1m" if case == "a read-only disk" else "size=8k"
        if not _mount(tmp_path / "disk", options):
            pytest.skip("needs root to mount a tmpfs")
        out = tmp_path / "disk" / "out"
    elif command == "compare":
        pytest.skip("compare takes no --labels")
    else:
        np.save(tmp_path / "labels.npy", np.array(3))
        extra = ["--labels", str(tmp_path / "labels.npy")]
    try:
        if command == "ensemble":
            code = ensemble_command.main([str(sweep), "--out", str(out), *extra])
        else:
            code = compare_command.main([str(first), str(second), "--out", str(out)])
        error = capsys.readouterr().err
        assert code == 2, error
        assert message in error and "fix:" in error
        assert not marker.exists()  # nothing was unpickled
        manifest = out / "manifest.json"
        assert not manifest.exists() or json.loads(manifest.read_text())["status"] != "complete"
    finally:
        if case in ("a read-only disk", "a full disk"):
            subprocess.run(["umount", "-l", str(tmp_path / "disk")], capture_output=True)


def test_ensemble_labels_that_are_a_fifo_are_refused_without_opening_it(tmp_path) -> None:
    import subprocess

    write_sweep(tmp_path / "sweep", [np.arange(6), np.arange(6)])
    fifo = tmp_path / "labels.npy"
    os.mkfifo(fifo)
    try:  # a subprocess: a reader that opens the FIFO would block forever
        result = run_cli(
            "ensemble", "sweep", "--labels", str(fifo), cwd=tmp_path, check=False, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("ensemble --labels FIFO blocked: it opened the FIFO")
    assert result.returncode == 2
    assert "is a FIFO, not a file" in result.stderr and "fix:" in result.stderr


@pytest.fixture
def ensemble_run(tmp_path) -> Path:
    write_sweep(tmp_path / "sweep", [np.arange(6) % 3, np.arange(6) % 2, np.arange(6) % 3])
    out = tmp_path / "ens"
    assert ensemble_command.main([str(tmp_path / "sweep"), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "exe", "format 'exe' is not one of npy, pt, parquet, csv"),
        ("format", 5, "format 5 is not one of"),
        ("members", "all", "members 'all' is not a list of member records"),
        ("members", [{"job_dir": 3, "outputs": []}], "has no job_dir and outputs"),
        ("methods", {"prediction": "eval"}, "method 'eval' is not one of mean, vote, prob_mean"),
        ("methods", "vote", "methods 'vote' is not a record of output: method"),
        ("methods", {}, "methods {} is not a record"),
    ],
)
def test_reproduce_refuses_a_tampered_ensemble_manifest(
    ensemble_run, tmp_path, capsys, field, value, message
) -> None:
    from litpredict import reproduce

    manifest = read_manifest(ensemble_run)
    manifest["ensemble"][field] = value
    (ensemble_run / "manifest.json").write_text(json.dumps(manifest))
    again = tmp_path / "again"
    assert reproduce.main([str(ensemble_run), f"hydra.run.dir={again}"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "fix:" in captured.err
    assert "reproduced" not in captured.out
    assert not again.exists()


# -- 9. the sweep directory ------------------------------------------------------------------


def test_an_ensemble_written_into_the_sweep_directory_is_no_job(tmp_path) -> None:
    from litpredict.results.ensembles import select_jobs
    from litpredict.sweep.summary import write_summary

    sweep = tmp_path / "sweep"
    jobs = write_sweep(sweep, [np.arange(6) % 3, np.arange(6) % 2, np.arange(6) % 3])
    assert ensemble_command.main([str(sweep), "--out", str(sweep / "5_ens")]) == 0
    assert select_jobs(sweep, None, None) == jobs  # not job 5
    rows = write_summary(sweep, plot=False)["rows"]
    assert [r["job_dir"] for r in rows] == [j.name for j in jobs]
    again = tmp_path / "again"
    assert ensemble_command.main([str(sweep), "--out", str(again)]) == 0
    assert len(read_manifest(again)["ensemble"]["members"]) == 3


def test_a_glob_through_a_symlink_loop_matches_each_file_once(tmp_path) -> None:
    from hydra_plugins.litpredict._file_glob import expand

    folder = tmp_path / "ckpts"
    folder.mkdir()
    (folder / "epoch=1-step=10.ckpt").write_bytes(b"PK")
    (folder / "epoch=2-step=20.ckpt").write_bytes(b"PK")
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # ckpts/loop/loop/...
    (folder / "last.ckpt").symlink_to(folder / "epoch=2-step=20.ckpt")  # save_last="link"
    found = expand([f"{folder}/**/*.ckpt"])
    assert found == [str(folder / "epoch=1-step=10.ckpt"), str(folder / "epoch=2-step=20.ckpt")]


def test_a_job_directory_linked_from_outside_the_sweep_is_no_member(tmp_path, capsys) -> None:
    sweep = tmp_path / "sweep"
    write_sweep(sweep, [np.arange(6), np.arange(6)])
    elsewhere = write_run(tmp_path / "elsewhere" / "run", np.zeros(6, np.int64))
    (sweep / "2_linked").symlink_to(elsewhere, target_is_directory=True)
    out = tmp_path / "ens"
    for selection in ([], ["--jobs", "0,2"]):
        assert ensemble_command.main([str(sweep), "--out", str(out), *selection]) == 2
        error = capsys.readouterr().err
        assert f"resolves to {elsewhere}, outside the sweep directory" in error
        assert "fix:" in error
    assert not out.exists()
    assert ensemble_command.main([str(sweep), "--out", str(out), "--jobs", "0,1"]) == 0


_RUNNING = """
import json, sys, time
from pathlib import Path
from litpredict.rundir.lock import RunLock
run_dir = Path(sys.argv[1])
RunLock.acquire(run_dir)
(run_dir / "manifest.json").write_text(json.dumps({"status": "running", "outputs": []}))
print("running", flush=True)
time.sleep(600)
"""


def test_the_summary_says_interrupted_for_a_running_job_whose_process_died(tmp_path) -> None:
    import signal
    import subprocess

    from litpredict.sweep.summary import write_summary

    sweep = tmp_path / "sweep"
    job = sweep / "0_epoch=0"
    job.mkdir(parents=True)
    process = subprocess.Popen(  # a job: its run directory locked, its manifest running
        [sys.executable, "-c", _RUNNING, str(job)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        assert process.stdout.readline().strip() == "running"
        [row] = write_summary(sweep, plot=False)["rows"]
        assert row["status"] == "running"  # its process is alive and holds the lock
    finally:
        process.send_signal(signal.SIGKILL)  # killed: nothing recorded, lock file left behind
        process.wait(timeout=60)
    assert (job / ".litpredict.lock").exists() and read_manifest(job)["status"] == "running"
    [row] = write_summary(sweep, plot=False)["rows"]
    assert row["status"] == "interrupted"
    assert "killed or crashed" in row["error"]
