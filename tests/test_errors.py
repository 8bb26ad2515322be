"""Bad input ends with a short message naming problem and fix, a non-zero exit, and no
traceback on stderr; nothing is ever marked complete.

The table runs in-process (``predict_in_process``): each case asserts the message the CLI
would print. A few cases run the real command, for the CLI's own part: exit code, stderr
format, Hydra's override errors and the output-directory check.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import predict_in_process, run_cli
from litpredict.process.errors import FIX_PREFIX, describe, user_error_in
from litpredict.process.reporting import EXIT_ERROR, EXIT_USAGE

pytestmark = pytest.mark.slow


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def bad(tmp_path_factory, trained):
    """A folder of bad inputs, and a good linear checkpoint to pair them with."""
    root = tmp_path_factory.mktemp("bad")
    good = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    (root / "empty.ckpt").write_bytes(b"")
    (root / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "truncated.ckpt").write_bytes(good.read_bytes()[:3000])
    (root / "a_directory.ckpt").mkdir()
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"x": RunsCode(root / "PWNED")}},
        root / "pickled_code.ckpt",
    )
    np.save(root / "x12.npy", np.zeros((8, 10 + 2), np.float32))
    np.save(root / "empty.npy", np.zeros((0, 10), np.float32))
    np.save(root / "x.npy", np.zeros((8, 10), np.float32))
    np.save(root / "y7.npy", np.zeros((7, 1), np.float32))
    (root / "a_file").write_text("")
    return root, good


def not_complete(run_dir) -> None:
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        assert json.loads(manifest.read_text())["status"] in ("failed", "interrupted")
    assert not (run_dir / "predictions.npy").exists()


def failure_of(tmp_path, *overrides: str) -> tuple[BaseException, str, int]:
    """The error an in-process run raises, the message and the exit code the CLI gives it."""
    with pytest.raises(BaseException) as caught:
        predict_in_process(tmp_path, *overrides)
    error = caught.value
    known = user_error_in(error)
    if known is not None:
        return error, known.message, EXIT_USAGE
    return error, describe(error), EXIT_ERROR


def expect_message(message: str, *phrases: str) -> None:
    lines = [line for line in message.splitlines() if line.strip()]
    assert len(lines) <= 25, message
    assert "Traceback" not in message
    for phrase in phrases:
        assert phrase in message, message
    assert "weights_only=False" not in message


CASES = {
    "no ckpt_path": ([], "no checkpoint given"),
    "missing checkpoint": (["ckpt_path={root}/nope.ckpt"], "does not exist"),
    "checkpoint is a directory": (["ckpt_path={root}/a_directory.ckpt"], "is a directory"),
    "empty checkpoint": (["ckpt_path={root}/empty.ckpt"], "is empty (0 bytes)"),
    "truncated checkpoint": (["ckpt_path={root}/truncated.ckpt"], "truncated or corrupt"),
    "random bytes": (["ckpt_path={root}/random.ckpt"], "is not a PyTorch checkpoint"),
    # The payload is read as an inert object and dropped (never run); the empty
    # state_dict is what is refused. Callables named by hparams: test_real_checkpoints.py.
    "pickled code": (
        ["ckpt_path={root}/pickled_code.ckpt", "model=linear"],
        "the checkpoint does not fit",
    ),
    "no model and no training run": (
        ["ckpt_path={root}/pickled_code.ckpt"],
        "no model chosen, and no training run config was found beside",
    ),
    "model is not a LightningModule": (
        ["ckpt_path={good}", "model._target_=os.system"],
        "not a pytorch_lightning.LightningModule",
    ),
    "contradicting hparams": (
        ["ckpt_path={good}", "model.output_dim=3"],
        "output_dim: checkpoint=1 config=3",
    ),
    "missing data file": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/nope.npy"],
        "the data file",
    ),
    "wrong number of features": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/x12.npy"],
        "does not fit the model",
    ),
    "empty dataset": (
        ["ckpt_path={good}", "datamodule=array_file", "datamodule.path={root}/empty.npy"],
        "dataset is empty",
    ),
    "labels of the wrong shape": (
        [
            "ckpt_path={good}",
            "datamodule=array_file",
            "datamodule.path={root}/x.npy",
            "datamodule.target_path={root}/y7.npy",
        ],
        "the targets have 7 rows but the features have 8",
    ),
    "unknown data hash": (["ckpt_path={good}", "data_hash=md4"], "unknown data_hash 'md4'"),
    # any error type from the user's forward names the batch and says what to check
    "the model's forward raises": (
        ["ckpt_path={good}", "model._target_=failing_models.RaisesInForward"],
        "predict_step failed on a batch of (shape (2048, 10), shape (2048, 1)): KeyError",
    ),
}

# Hydra's override errors and the output-directory check come before litpredict's job runs
# (no torch import): the real command, cheaply. One case of the job's own errors too.
CLI_CASES = {
    "truncated checkpoint": (["ckpt_path={root}/truncated.ckpt"], "truncated or corrupt"),
    "typo in an override": (
        ["ckpt_path={good}", "trainer.devicez=2"],
        "Could not override 'trainer.devicez'",
    ),
    "unknown group choice": (["ckpt_path={good}", "model=resnet"], "Could not find 'model/resnet'"),
    "unwritable output directory": (
        ["ckpt_path={good}", "hydra.run.dir={root}/a_file/run"],
        "cannot be written",
    ),
}


def with_run_dir(overrides: list[str], root, good, run_dir) -> list[str]:
    overrides = [o.format(root=root, good=good) for o in overrides]
    if not any(o.startswith("hydra.run.dir") for o in overrides):
        overrides.append(f"hydra.run.dir={run_dir}")
    return overrides


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_reported_and_nothing_completes(case, bad, tmp_path) -> None:
    root, good = bad
    overrides, phrase = CASES[case]
    _, message, _ = failure_of(tmp_path, *with_run_dir(overrides, root, good, tmp_path / "run"))
    expect_message(message, phrase)
    assert FIX_PREFIX in message, f"{case}: no fix named"
    not_complete(tmp_path / "run")
    assert not (root / "PWNED").exists()


def expect_failure(result, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 25, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    assert "weights_only=False" not in result.stderr


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_command_reports_bad_input_in_a_few_lines(case, bad, tmp_path) -> None:
    root, good = bad
    overrides, phrase = CLI_CASES[case]
    overrides = with_run_dir(overrides, root, good, tmp_path / "run")
    result = run_cli("predict", *overrides, cwd=tmp_path, check=False)
    expect_failure(result, phrase)
    if "litpredict: error:" in result.stderr:  # litpredict's message, not Hydra's
        assert result.returncode == EXIT_USAGE and "fix:" in result.stderr
    not_complete(tmp_path / "run")


def test_checkpoint_of_another_architecture_names_keys_and_shapes(
    article_checkpoints, tmp_path
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 20, 5), np.float32))
    _, message, code = failure_of(
        tmp_path,
        "model=lstm",
        "model._target_=article_models.LSTMModel",
        "+model.input_dim=5",
        "+model.hidden_dim=32",
        "+model.output_dim=3",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"ckpt_path={article_checkpoints['lstm'].path}",
    )
    expect_message(message, "lstm.weight_ih_l0: checkpoint (64, 5) vs model (128, 5)", "fix:")
    assert code == EXIT_USAGE
    not_complete(tmp_path / "run")


def test_wrong_image_size_for_a_fixed_size_model(article_checkpoints, tmp_path) -> None:
    (tmp_path / "images" / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images" / "a" / "big.png")
    _, message, _ = failure_of(
        tmp_path,
        "model=cnn",
        "model._target_=article_models.ImageClassifier",
        "datamodule=image_folder",
        f"datamodule.root={tmp_path / 'images'}",
        "datamodule.image_size=null",
        "datamodule.num_workers=0",
        f"ckpt_path={article_checkpoints['cnn'].path}",
    )
    expect_message(message, "does not fit the model", "image_size")
    not_complete(tmp_path / "run")


class _FailingDataset:
    """A dataset whose sample raises a DataError, as a user's own dataset may."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        from litpredict.process.errors import DataError

        raise DataError(f"sample {index} is broken", "repair the sample")


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_user_error_from_a_dataloader_worker_keeps_problem_and_fix(num_workers) -> None:
    """torch re-raises a worker's error as ``cls(message=<traceback text>)``."""
    from torch.utils.data import DataLoader

    from litpredict.process.errors import DataError

    with pytest.raises(DataError) as caught:
        list(DataLoader(_FailingDataset(), batch_size=1, num_workers=num_workers))
    assert caught.value.problem == "sample 0 is broken"
    assert caught.value.fix == "repair the sample"
