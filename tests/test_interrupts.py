"""SIGTERM / SIGINT in the middle of a long prediction: never a complete-looking run;
the same command again completes it; a complete run is never overwritten.

The interrupted runs are real commands (signals are the CLI's part); reruns on one process
run in-process (``predict_in_process``) unless the command's output is under test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from typing import Any

import numpy as np
import pytest

from conftest import REPO, predict_in_process, read_manifest, run_cli
from litpredict.process.errors import UserError

pytestmark = pytest.mark.slow


def wait_until_predicting(run_dir, proc, timeout: float = 120) -> None:
    """Until some rank has written a batch to its shard."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if any(p.stat().st_size > 0 for p in run_dir.glob(".shards/*/rank*/prediction.bin")):
            return
        time.sleep(0.1)
    raise AssertionError("prediction never started")


@pytest.mark.parametrize(
    "sig,trainer",
    [(signal.SIGTERM, "cpu"), (signal.SIGINT, "cpu"), (signal.SIGTERM, "ddp_cpu")],
)
def test_interrupted_run_is_marked_and_the_rerun_completes(trained, tmp_path, sig, trainer) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    np.save(
        tmp_path / "x.npy", np.random.default_rng(0).normal(size=(400_000, 10)).astype(np.float32)
    )
    run_dir = tmp_path / "run"
    overrides = [
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        "datamodule.batch_size=16",  # slow on purpose: ~25k batches
        f"trainer={trainer}",
        f"ckpt_path={ckpt}",
        f"hydra.run.dir={run_dir}",
    ]
    command = [sys.executable, "-m", "litpredict.predict", *overrides]
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_until_predicting(run_dir, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "interrupted" in stderr and "Traceback" not in stderr
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "interrupted"
    assert not (run_dir / "predictions.npy").exists()  # nothing under a final name

    again = [*[o for o in overrides if "batch_size" not in o], "datamodule.batch_size=8192"]
    if trainer == "cpu":
        predict_in_process(tmp_path, *again)
    else:  # DDP ranks are started by the real command, not inside pytest
        run_cli("predict", *again, cwd=tmp_path)
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete" and manifest["num_predictions"] == 400_000
    assert np.load(run_dir / "predictions.npy").shape == (400_000, 1)


def test_a_complete_run_is_never_overwritten(trained, tmp_path) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    run_dir = tmp_path / "run"
    overrides = [f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}"]
    predict_in_process(tmp_path, *overrides)
    before = {
        p.name: p.stat().st_mtime_ns
        for p in run_dir.iterdir()
        if p.is_file() and p.suffix != ".log"
    }
    manifest = (run_dir / "manifest.json").read_text()
    again = run_cli("predict", *overrides, cwd=tmp_path)
    assert "already complete" in again.stdout
    after = {
        p.name: p.stat().st_mtime_ns
        for p in run_dir.iterdir()
        if p.is_file() and p.suffix != ".log"
    }
    assert after == before
    assert (run_dir / "manifest.json").read_text() == manifest
    assert json.loads(manifest)["status"] == "complete"


def test_a_complete_run_is_not_overwritten_by_another_checkpoint(trained, tmp_path) -> None:
    checkpoints = trained["linear_regression"] / "checkpoints"
    run_dir = tmp_path / "run"
    predict_in_process(tmp_path, f"ckpt_path={checkpoints / 'last.ckpt'}")
    predictions = (run_dir / "predictions.npy").read_bytes()
    other = f"ckpt_path={checkpoints / 'epoch=0-step=64.ckpt'}"
    with pytest.raises(UserError, match="complete run of another checkpoint"):
        predict_in_process(tmp_path, other)
    assert (run_dir / "predictions.npy").read_bytes() == predictions
    assert read_manifest(run_dir)["status"] == "complete"


def test_a_signal_between_the_final_renames_and_complete_waits(
    trained, tmp_path, monkeypatch
) -> None:
    """SIGTERM right after the outputs got their final names is held until the manifest
    says complete: final-named files never stand beside a manifest that is not."""
    from litpredict.writing.callback import PredictionWriter

    renamed = PredictionWriter.finalize

    def finalize_then_signal(self):
        result = renamed(self)  # the outputs have their final names now
        os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(PredictionWriter, "finalize", finalize_then_signal)
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    manifest = predict_in_process(tmp_path, "experiment=linear_regression", f"ckpt_path={ckpt}")
    assert manifest["status"] == "complete"
    assert read_manifest(tmp_path / "run")["status"] == "complete"
    assert (tmp_path / "run" / "predictions.npy").is_file()


# submitit's time-limit handler requeues the job with ``scontrol requeue``, and SLURM's
# requeue sends SIGTERM while that handler still runs; the handler then exits the job with
# ``sys.exit(-1)``. Compiled under submitit's module name, as the handler's frame is.
_SUBMITIT_LIKE = """
import os, signal, sys
def checkpoint_and_try_requeue():
    os.kill(os.getpid(), signal.SIGTERM)  # the requeue's SIGTERM, delivered right here
    sys.exit(-1)
"""


def _submitit_handler():
    namespace = {"__name__": "submitit.core.job_environment"}
    exec(compile(_SUBMITIT_LIKE, "job_environment.py", "exec"), namespace)
    return namespace["checkpoint_and_try_requeue"]


def test_the_requeues_sigterm_inside_submitits_handler_is_not_an_interrupt() -> None:
    """The job ends as requeued (submitit's exit), not ``interrupted``: a job that returns
    as interrupted makes the sweep report it while the requeued job runs on."""
    from litpredict.process.errors import RunInterrupted
    from litpredict.process.reporting import requeued_by_launcher
    from litpredict.process.signals import interrupts_raise

    with interrupts_raise():
        with pytest.raises(SystemExit) as raised:
            _submitit_handler()()
        assert requeued_by_launcher(raised.value)
        # Anywhere else a SIGTERM is the interrupt it always was.
        with pytest.raises(RunInterrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)


def test_an_interrupt_while_submitits_exit_unwinds_is_still_the_requeue() -> None:
    """A SIGTERM that lands after the handler, while its exit unwinds the job: the
    interrupt carries the exit as its context, and the job still ends as requeued."""
    from litpredict.process.errors import RunInterrupted
    from litpredict.process.reporting import requeued_by_launcher
    from litpredict.process.signals import interrupts_raise

    handler = _submitit_handler()
    with interrupts_raise(), pytest.raises(RunInterrupted) as raised:
        try:
            handler()  # its SIGTERM is ignored; its exit unwinds...
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ...and a second SIGTERM lands here
            time.sleep(1)
    assert isinstance(raised.value.__context__, SystemExit)
    assert requeued_by_launcher(raised.value)
    assert not requeued_by_launcher(RunInterrupted("SIGTERM"))
    assert not requeued_by_launcher(SystemExit(-1))


def test_an_interrupt_in_an_except_block_while_submitits_exit_unwinds_is_the_requeue() -> None:
    """As on a real SLURM requeue: the SIGTERM landed in logging's ``except KeyError`` (a
    cache miss) while Lightning tore down under submitit's exit, so the interrupt's context
    is the KeyError, and the exit is the KeyError's. Without submitit's exit in the chain
    the same interrupt is an interrupt."""
    from litpredict.process.errors import RunInterrupted
    from litpredict.process.reporting import requeued_by_launcher
    from litpredict.process.signals import interrupts_raise

    def sigterm_in_an_except_block() -> None:
        try:
            {}[10]
        except KeyError:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)

    handler = _submitit_handler()
    with interrupts_raise(), pytest.raises(RunInterrupted) as raised:
        try:
            handler()
        finally:
            sigterm_in_an_except_block()
    assert isinstance(raised.value.__context__, KeyError)
    assert isinstance(raised.value.__context__.__context__, SystemExit)
    assert requeued_by_launcher(raised.value)
    with interrupts_raise(), pytest.raises(RunInterrupted) as plain:
        sigterm_in_an_except_block()
    assert not requeued_by_launcher(plain.value)
    assert not requeued_by_launcher(KeyError(10))


def _trainer_started_by(launcher: Any) -> Any:
    """As much of a Trainer as the callback reads: its strategy's launcher."""
    return types.SimpleNamespace(strategy=types.SimpleNamespace(launcher=launcher))


def _rank_after_its_loop_started(results) -> None:
    """A process ``ddp_spawn`` could have started: the callback runs as its loop starts."""
    from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher

    from litpredict.process.signals import sigterm_flagged
    from litpredict.process.spawned_ranks import SigtermFlagInSpawnedRanks

    callback = SigtermFlagInSpawnedRanks()
    default = signal.getsignal(signal.SIGTERM)
    callback.on_predict_start(_trainer_started_by(None), None)  # a joblib worker's job
    results.put(("handler kept", signal.getsignal(signal.SIGTERM) is default))
    launcher = object.__new__(_MultiProcessingLauncher)
    callback.on_predict_start(_trainer_started_by(launcher), None)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)
    results.put(("alive", sigterm_flagged()))


def test_a_spawned_ranks_sigterm_only_sets_the_flag_the_writer_reads() -> None:
    """No collective (Lightning's handler broadcasts) and no exception inside whatever the
    rank was doing; the writer sees the flag at its next batch. A job that is a
    multiprocessing child without a multiprocessing launcher (Hydra's joblib workers), and
    the main process, keep their handlers."""
    import multiprocessing

    from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher

    from litpredict.process.spawned_ranks import SigtermFlagInSpawnedRanks

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    rank = context.Process(target=_rank_after_its_loop_started, args=(results,))
    rank.start()
    assert results.get(timeout=60) == ("handler kept", True)
    assert results.get(timeout=60) == ("alive", True)
    rank.join(timeout=60)
    assert rank.exitcode == 0
    before = signal.getsignal(signal.SIGTERM)
    launcher = object.__new__(_MultiProcessingLauncher)
    SigtermFlagInSpawnedRanks().on_predict_start(_trainer_started_by(launcher), None)
    assert signal.getsignal(signal.SIGTERM) is before


def _count_sigterms(ready, counted) -> None:
    seen = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    ready.set()
    time.sleep(3)
    counted.put(len(seen))


def test_stop_children_signals_each_worker_once() -> None:
    """The main process calls it in its SIGTERM handler and again as the run ends: a second
    SIGTERM would land in a worker that is already exiting."""
    import multiprocessing

    from litpredict.process.signals import stop_children

    context = multiprocessing.get_context("spawn")
    ready, counted = context.Event(), context.Queue()
    worker = context.Process(target=_count_sigterms, args=(ready, counted))
    worker.start()
    assert ready.wait(timeout=60)
    stop_children()
    stop_children()
    assert counted.get(timeout=60) == 1
    worker.join(timeout=60)
