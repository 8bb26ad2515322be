"""What a single run's console shows: each line once, litpredict's lines and real problems;
Lightning's banners and tips, deprecations and class-design hints only in the log file.

The real command runs in a subprocess: the console of the CLI is what is under test.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import REPO, plain_lightning_checkpoint, run_cli
from console_models import MESSAGE, SLEEP_VARIABLE
from litpredict.process.console import shows_warning
from test_real_checkpoints import lht, lht_overrides  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

# What Lightning and torch print in every run, and where each comes from.
NOISE = {
    "GPU available": "GPU available: False, used: False",  # rank_zero_info banners
    "💡 Tip": "💡 Tip: For seamless cloud logging",
    "srun": "The `srun` command is available on your system but is not used",
    "LeafSpec": "`isinstance(treespec, LeafSpec)` is deprecated",  # torch FutureWarning
}
NN_MODULE_HINT = "is an instance of `nn.Module` and is already saved during checkpointing"


@pytest.fixture(scope="module")
def warning_ckpt(tmp_path_factory) -> Path:
    """A checkpoint of a model whose predict_step warns, fitted by plain Lightning."""
    import torch

    from console_models import WarnsInPredict

    path = tmp_path_factory.mktemp("console") / "warns.ckpt"
    x = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    plain_lightning_checkpoint(WarnsInPredict(), x, x.sum(dim=1, keepdim=True), path)
    return path


@pytest.fixture
def with_srun(tmp_path) -> dict[str, str]:
    """An ``srun`` on PATH, as on a SLURM login node: Lightning then hints at it each run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def console_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def assert_each_line_once(lines: list[str]) -> None:
    repeated = sorted({line for line in lines if lines.count(line) > 1})
    assert not repeated, "\n".join(lines)


def predict_with_warning_model(tmp_path, ckpt, env, *overrides) -> tuple[list[str], str]:
    run_dir = tmp_path / "run"
    result = run_cli(
        "predict",
        "experiment=linear_regression",
        "model._target_=console_models.WarnsInPredict",
        "datamodule.batch_size=256",  # 8 batches: 8 warnings from the same line
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={run_dir}",
        *overrides,
        cwd=tmp_path,
        env=env,
    )
    return console_lines(result), (run_dir / "predict.log").read_text()


def test_a_single_run_shows_what_runs_its_result_and_the_users_warning_once(
    warning_ckpt, with_srun, tmp_path
) -> None:
    lines, log = predict_with_warning_model(tmp_path, warning_ckpt, with_srun)
    console = "\n".join(lines)
    assert_each_line_once(lines)
    for name, text in NOISE.items():
        assert name not in console, console
        assert text in log, f"{name} should be in the log file"
    assert lines[0] == (
        f"predicting: WarnsInPredict from {warning_ckpt} | RegressionDemo, 2048 samples | "
        "cpu, 1 process"
    )
    assert console.count(MESSAGE) == 1  # the user's own warning, shown once
    assert re.search(rf"console_models\.py:\d+: UserWarning: {MESSAGE}$", console, re.M)
    assert re.fullmatch(
        rf"2048 predictions, mse=[\d.e-]+, mae=[\d.e-]+ -> {tmp_path / 'run'}", lines[-1]
    )
    assert len(lines) == 3, console
    assert "Predicting DataLoader" not in console  # no terminal: no progress bar


def test_a_pickled_hyperparameter_checkpoint_says_what_was_dropped_in_one_line(
    lht,  # noqa: F811  (the fixture imported above)
    tmp_path,
) -> None:
    path, x, y = lht
    run_dir = tmp_path / "run"
    result = run_cli(
        "predict", *lht_overrides(tmp_path, x, y, path), f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    lines = console_lines(result)
    log = (run_dir / "predict.log").read_text()
    assert_each_line_once(lines)
    assert lines == [
        f"checkpoint {path.name}: hyperparameters dropped (built from the config instead): "
        "net, optimizer, scheduler (pickled objects, never run; their classes are in the log "
        "file)",
        f"predicting: MNISTLitModule from {path} | ArrayFileDataModule, 40 samples | "
        "cpu, 1 process",
        lines[2],
    ]
    assert re.fullmatch(rf"40 predictions, accuracy=[\d.e-]+ -> {run_dir}", lines[2])
    assert NN_MODULE_HINT in log  # Lightning's hint about the class: the log file only
    classes = re.search(r"pickled classes: (.*)", log).group(1).split(", ")
    assert (
        classes == sorted(classes)
        and "lht_project.src.models.components.simple_dense_net.SimpleDenseNet" in classes
    )


@pytest.mark.ddp
def test_two_ranks_print_each_line_once(warning_ckpt, tmp_path) -> None:
    """ddp_spawn ranks are fresh interpreters: they log to the run's file, and only rank 0
    to the console (each rank warns; Lightning says "Initializing distributed" per rank)."""
    lines, log = predict_with_warning_model(tmp_path, warning_ckpt, None, "trainer=ddp_cpu")
    console = "\n".join(lines)
    assert_each_line_once(lines)
    assert console.count(MESSAGE) == 1
    assert "Initializing distributed" not in console and "LeafSpec" not in console
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and log.count(MESSAGE) == 2  # one per rank
    assert lines[0].endswith("| cpu, 2 processes") and lines[-1].startswith("2048 predictions")
    assert len(lines) == 3, console


def test_a_terminal_gets_a_progress_bar_on_long_runs_only_and_the_log_never(
    warning_ckpt, tmp_path
) -> None:
    def in_terminal(name: str, sleep_s: float = 0.0) -> tuple[str, str]:
        """The command with stdout and stderr on a pseudo-terminal, as typed in a shell."""
        import pty

        primary, secondary = pty.openpty()
        rows_columns = struct.pack("HHHH", 24, 100, 0, 0)  # a new pty is 0x0: tqdm draws nothing
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, rows_columns)
        run_dir = tmp_path / name
        process = subprocess.Popen(
            [sys.executable, "-m", "litpredict.predict", "experiment=linear_regression",
             "model._target_=console_models.WarnsInPredict", "datamodule.batch_size=256",
             f"ckpt_path={warning_ckpt}", f"hydra.run.dir={run_dir}"],
            cwd=tmp_path, stdout=secondary, stderr=secondary,
            env={**os.environ, "PYTHONPATH": str(REPO / "tests"), SLEEP_VARIABLE: str(sleep_s)},
        )  # fmt: skip
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=300) == 0, output.decode(errors="replace")
        os.close(primary)
        return output.decode(errors="replace"), (run_dir / "predict.log").read_text()

    short, short_log = in_terminal("short")
    assert "Predicting DataLoader" not in short  # done before the bar's delay
    slow, slow_log = in_terminal("slow", sleep_s=0.4)  # 8 batches: over 3 s
    assert "Predicting DataLoader 0: 100%" in slow
    assert "Predicting DataLoader" not in short_log + slow_log
    assert "\r" not in short_log + slow_log


def test_which_warnings_reach_the_console() -> None:
    from lightning_fabric.utilities.warnings import PossibleUserWarning

    assert shows_warning(UserWarning, "the input has NaNs")
    assert not shows_warning(FutureWarning, "`isinstance(treespec, LeafSpec)` is deprecated")
    assert not shows_warning(DeprecationWarning, "x is deprecated")
    assert not shows_warning(PossibleUserWarning, "The 'predict_dataloader' does not have many")
    assert not shows_warning(UserWarning, f"Attribute 'net' {NN_MODULE_HINT}.")
