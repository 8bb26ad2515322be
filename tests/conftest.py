"""Shared test helpers: the real commands in subprocesses, or a prediction in-process through
Hydra's compose API (no torch import per case); small checkpoints trained once per session."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("linear_regression", "image_classification", "sequence")


def run_cli(
    module: str,
    *overrides: str,
    cwd: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """``python -m litpredict.<module> overrides...`` in ``cwd``; output captured."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", f"litpredict.{module}", *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"litpredict.{module} {' '.join(overrides)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
        )
    return result


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def compose_predict(*overrides: str, run_dir: Path | None = None, config_name: str = "predict"):
    """The task config, and ``HydraConfig``, as ``python -m litpredict.<config_name>`` has
    them when its job starts: for a test of how a run goes, without a subprocess.

    ``overrides`` are as typed on the command line (``ckpt_path=`` quoted as the console
    entry does). ``run_dir`` sets ``hydra.run.dir``; without it the default run directory
    (``${now:...}_${lp_uid:}``) is used. What Hydra's ``run_job`` does is mirrored: the run
    directory resolved into ``hydra.runtime.output_dir`` (so ``${hydra:...}`` resolves) and
    created, ``hydra`` removed from the task config. Not run: the Hydra callbacks, logging
    setup and the ``.hydra/`` files; test those through :func:`run_cli`. A bad override
    raises Hydra's ``ConfigCompositionException``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    from litpredict.process import resolvers  # noqa: F401  (what importing an entry point registers)
    from litpredict.process.argv import quote_checkpoint_paths
    from litpredict.process.config_dir import config_dir

    typed = quote_checkpoint_paths(list(overrides))
    if run_dir is not None:
        typed.append(f"hydra.run.dir={run_dir}")
    with initialize_config_dir(config_dir(), job_name=config_name, version_base="1.3"):
        config = compose(config_name, overrides=typed, return_hydra_config=True)
    HydraConfig.instance().set_config(config)
    output_dir = os.path.abspath(str(config.hydra.run.dir))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    HydraConfig.instance().set_config(config)
    task = config.copy()
    with read_write(task), open_dict(task):
        del task["hydra"]
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    return task


def predict_in_process(tmp_path: Path, *overrides: str) -> dict[str, Any]:
    """``litpredict.predict.predict`` on the composed config, in this process.

    Returns the manifest's data; raises what the run raises (a ``UserError`` where the CLI
    would print ``litpredict: error: <problem>\n  fix: <fix>`` and exit 2). The run goes to
    ``tmp_path / "run"`` unless ``overrides`` set ``hydra.run.dir``.
    """
    from litpredict.predict import predict
    from litpredict.process.job import Job

    run_dir = None if any(o.startswith("hydra.run.dir=") for o in overrides) else tmp_path / "run"
    config = compose_predict(*overrides, run_dir=run_dir)
    job = Job.from_hydra()
    logging.captureWarnings(False)  # from_hydra routes warnings to the log: not pytest's
    return predict(config, job)


# What ``pl.seed_everything`` leaves in the environment: CLI subprocesses would inherit it.
SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@pytest.fixture(autouse=True)
def _forget_in_process_runs():
    """An in-process run's ``HydraConfig`` and seed variables do not outlive its test."""
    seeds = {name: os.environ.get(name) for name in SEED_VARIABLES}
    yield
    if "hydra.core.hydra_config" in sys.modules:
        sys.modules["hydra.core.hydra_config"].HydraConfig.instance().cfg = None
    for name, value in seeds.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """One short training run per experiment: {experiment: run dir with checkpoints/}."""
    root = tmp_path_factory.mktemp("trained")
    runs = {}
    for experiment in EXPERIMENTS:
        run_dir = root / experiment
        run_cli(
            "train",
            f"experiment={experiment}",
            "trainer.max_epochs=2",
            f"hydra.run.dir={run_dir}",
            cwd=root,
        )
        runs[experiment] = run_dir
    return runs


def plain_lightning_checkpoint(model, x, y, path: Path) -> None:
    """What a user does: fit briefly with the Trainer of the model's own Lightning package
    (``pytorch_lightning`` or ``lightning``), save a checkpoint. No litpredict involved."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    if not isinstance(model, pl.LightningModule):
        import lightning.pytorch as pl

    trainer = pl.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=path.parent,
    )
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    trainer.save_checkpoint(path)


@dataclass
class ArticleCheckpoint:
    """A seed-article model fitted with plain Lightning, its checkpoint and its data."""

    model: Any
    path: Path
    x: Any
    y: Any


@pytest.fixture(scope="session")
def article_checkpoints(tmp_path_factory) -> dict[str, ArticleCheckpoint]:
    """The article's three models, each fitted once per session: {linear, cnn, lstm}."""
    import torch

    from article_models import ImageClassifier, LinearRegressionModel, LSTMModel

    root = tmp_path_factory.mktemp("article")
    generator = torch.Generator().manual_seed(0)
    linear_x = torch.randn(257, 10, generator=generator)
    made = {
        "linear": (LinearRegressionModel(10, 1), linear_x, linear_x.sum(dim=1, keepdim=True)),
        "cnn": (
            ImageClassifier(),
            torch.randn(32, 3, 32, 32, generator=generator),
            torch.randint(0, 10, (32,), generator=generator),
        ),
        "lstm": (
            LSTMModel(5, 16, 3),
            torch.randn(40, 20, 5, generator=generator),
            torch.randn(40, 20, 3, generator=generator),
        ),
    }
    checkpoints = {}
    for name, (model, x, y) in made.items():
        plain_lightning_checkpoint(model, x, y, root / f"{name}.ckpt")
        checkpoints[name] = ArticleCheckpoint(model.eval(), root / f"{name}.ckpt", x, y)
    return checkpoints


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory) -> Path:
    """A linear-regression checkpoint from one epoch of ``train`` (in-process)."""
    from litpredict.process.job import Job
    from litpredict.train import train

    root = tmp_path_factory.mktemp("one_epoch_train")
    config = compose_predict(
        "experiment=linear_regression",
        "trainer.max_epochs=1",
        run_dir=root / "train",
        config_name="train",
    )
    train(config, Job.from_hydra())
    return root / "train" / "checkpoints" / "last.ckpt"
