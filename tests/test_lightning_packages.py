"""Both Lightning packages end to end: ``lightning`` (``import lightning as L``) and
``pytorch_lightning``, each model trained by its own package's Trainer, predicted by
litpredict, and compared with plain torch on the checkpoint's raw ``state_dict``."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (
    REPO,
    compose_predict,
    plain_lightning_checkpoint,
    predict_in_process,
    read_manifest,
    run_cli,
)

lightning = pytest.importorskip("lightning")

from litpredict.checkpoint.reading import trained_model_target  # noqa: E402
from litpredict.trainer import lightning_api  # noqa: E402
from litpredict.trainer.lightning_api import LIGHTNING, PYTORCH_LIGHTNING  # noqa: E402

MODELS = {LIGHTNING: "unified_models", PYTORCH_LIGHTNING: "classic_models"}


def oracle(checkpoint: Path, x: torch.Tensor) -> np.ndarray:
    """The regressor's output computed from the raw state_dict with plain torch."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    hidden = torch.tanh(x @ state["net.0.weight"].T + state["net.0.bias"])
    return (hidden @ state["net.2.weight"].T + state["net.2.bias"]).numpy()


def array_files(tmp_path: Path, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    return [
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
    ]


@pytest.fixture(scope="module")
def regressors(tmp_path_factory) -> dict[str, Path]:
    """{package: checkpoint} of a regressor fitted by that package's own Trainer."""
    import classic_models
    import unified_models

    root = tmp_path_factory.mktemp("packages")
    x, y = unified_models.regression_data()
    made = {}
    for package, module in ((LIGHTNING, unified_models), (PYTORCH_LIGHTNING, classic_models)):
        torch.manual_seed(0)
        path = root / f"{package}.ckpt"
        plain_lightning_checkpoint(module.Regressor(hidden=6), x, y, path)
        made[package] = path
    return made


def test_the_package_is_read_from_the_mro_without_importing() -> None:
    import classic_models
    import unified_models

    assert lightning_api.package_of(unified_models.Regressor) == LIGHTNING
    assert lightning_api.package_of(classic_models.Regressor()) == PYTORCH_LIGHTNING
    assert lightning_api.package_of(torch.nn.Linear) is None
    unified = lightning_api.api(LIGHTNING)
    assert (
        unified.target("pytorch_lightning.loggers.CSVLogger")
        == "lightning.pytorch.loggers.CSVLogger"
    )
    assert unified.target("litpredict.checkpoint.record.RecordModelTarget") == (
        "litpredict.checkpoint.record.LightningRecordModelTarget"
    )
    classic = lightning_api.api(PYTORCH_LIGHTNING)
    assert classic.target("lightning.pytorch.Trainer") == "pytorch_lightning.Trainer"
    assert classic.target("litpredict.checkpoint.record.RecordModelTarget") == (
        "litpredict.checkpoint.record.RecordModelTarget"
    )


def test_twins_pickle_by_name_for_spawned_workers() -> None:
    from litpredict.writing import callback

    twin = lightning_api.api(LIGHTNING).counterpart(callback.PredictionWriter)
    assert twin is callback.LightningPredictionWriter
    assert issubclass(twin, lightning.pytorch.callbacks.BasePredictionWriter)
    restored = pickle.loads(pickle.dumps(twin(format="npy", output_dir="out")))
    assert type(restored) is twin and restored.format == "npy"


@pytest.mark.parametrize("package", [LIGHTNING, PYTORCH_LIGHTNING])
def test_the_trainer_and_every_callback_come_from_the_models_package(package, tmp_path) -> None:
    from litpredict.data.build import build_datamodule
    from litpredict.trainer import build

    config = compose_predict(
        f"model._target_={MODELS[package]}.Regressor", "ckpt_path=x.ckpt", run_dir=tmp_path
    )
    own = build.lightning(config)
    assert own.package == package
    writer = build.writer(config, tmp_path, own)
    trainer = build.trainer(config, callbacks=[writer], lightning=own)
    other = lightning_api.api(LIGHTNING if package == PYTORCH_LIGHTNING else PYTORCH_LIGHTNING)
    assert isinstance(trainer, own.Trainer) and not isinstance(trainer, other.Trainer)
    ours = [c for c in trainer.callbacks if type(c).__module__.startswith("litpredict.")]
    assert len(ours) >= 2 and all(isinstance(c, own.Callback) for c in ours)
    assert all(lightning_api.package_of(c) == package for c in trainer.callbacks)
    datamodule = own.datamodule(build_datamodule(config))
    assert isinstance(datamodule, own.LightningDataModule)


@pytest.mark.slow
@pytest.mark.parametrize("package", [LIGHTNING, PYTORCH_LIGHTNING])
def test_a_model_of_either_package_predicts_as_its_state_dict(package, regressors, tmp_path):
    import unified_models

    x, y = unified_models.regression_data()
    manifest = predict_in_process(
        tmp_path,
        f"model._target_={MODELS[package]}.Regressor",
        *array_files(tmp_path, x, y),
        f"ckpt_path={regressors[package]}",
    )
    assert manifest["status"] == "complete"
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, oracle(regressors[package], x), rtol=1e-5, atol=1e-6)
    assert manifest["versions"]["lightning"] == lightning.__version__
    assert manifest["versions"]["pytorch_lightning"]


@pytest.mark.slow
def test_a_users_lightning_datamodule_with_a_lightning_model(regressors, tmp_path) -> None:
    import unified_models

    manifest = predict_in_process(
        tmp_path,
        f"model._target_={MODELS[LIGHTNING]}.Regressor",
        "~datamodule",
        "+datamodule._target_=unified_models.RegressionData",
        "+datamodule.n=50",
        "+datamodule.seed=3",
        f"ckpt_path={regressors[LIGHTNING]}",
    )
    x, _ = unified_models.regression_data(n=50, seed=3)
    assert manifest["status"] == "complete" and manifest["num_predictions"] == 50
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, oracle(regressors[LIGHTNING], x), rtol=1e-5, atol=1e-6)


def console_script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def without_tests_on_path() -> dict[str, str]:
    """The environment minus PYTHONPATH: a module imports only from the working directory."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.mark.slow
def test_the_train_console_script_trains_a_lightning_model_from_the_working_directory(tmp_path):
    """``litpredict-train`` imports ``unified_models`` from the cwd, as ``python -m`` would,
    and trains it with lightning's Trainer; litpredict then predicts from the checkpoint."""
    import unified_models

    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(REPO / "tests" / "unified_models.py", work / "unified_models.py")
    run_dir = tmp_path / "train"
    result = subprocess.run(
        [
            console_script("litpredict-train"),
            "model._target_=unified_models.Regressor",  # no ~model.output_dim needed
            "+model.hidden=5",
            "trainer.max_epochs=1",
            "datamodule.n_train=128",
            "datamodule.n_val=32",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=work,
        env=without_tests_on_path(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["hidden"] == 5
    # litpredict's own callback ran in lightning's Trainer (its lightning twin)
    assert trained_model_target(saved) == "unified_models.Regressor"
    assert (run_dir / "logs" / "metrics.csv").exists()  # lightning's CSVLogger, from conf/
    x, y = unified_models.regression_data(n=40)
    predict_in_process(
        tmp_path,
        "model._target_=unified_models.Regressor",
        *array_files(tmp_path, x, y),
        f"ckpt_path={checkpoint}",
    )
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, oracle(checkpoint, x), rtol=1e-5, atol=1e-6)


def test_an_unimportable_target_names_the_missing_module_on_stderr(regressors, tmp_path):
    result = subprocess.run(
        [
            console_script("litpredict-predict"),
            f"ckpt_path={regressors[PYTORCH_LIGHTNING]}",
            "model._target_=no_such_package_xyz.Model",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        env=without_tests_on_path(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr
    assert "No module named 'no_such_package_xyz'" in result.stderr


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_predicts_a_lightning_model_in_dataset_order(regressors, tmp_path) -> None:
    import unified_models

    x, y = unified_models.regression_data(n=37)
    run_dir = tmp_path / "ddp"
    run_cli(
        "predict",
        "trainer=ddp_cpu",
        f"model._target_={MODELS[LIGHTNING]}.Regressor",
        *array_files(tmp_path, x, y),
        f"ckpt_path={regressors[LIGHTNING]}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert read_manifest(run_dir)["world_size"] == 2
    predictions = np.load(run_dir / "predictions.npy")
    np.testing.assert_allclose(predictions, oracle(regressors[LIGHTNING], x), rtol=1e-5, atol=1e-6)


def test_training_another_class_gets_only_its_own_arguments(tmp_path) -> None:
    """As when predicting: ``model=linear``'s input_dim/output_dim/lr do not reach another
    class unless set again, and a key it does not take is refused only when typed."""
    from litpredict.checkpoint.model import training_model
    from litpredict.process.errors import UserError
    from litpredict.process.job import Job

    def built(*overrides: str):
        config = compose_predict(*overrides, run_dir=tmp_path / "train", config_name="train")
        return training_model(config, Job.from_hydra().explicit_keys("model"))

    other = built("model._target_=unified_models.Regressor", "+model.hidden=16")
    assert dict(other.hparams) == {"input_dim": 10, "hidden": 16, "lr": 0.01}
    again = built("model._target_=unified_models.Regressor", "model.lr=0.05")
    assert again.hparams.lr == 0.05  # set again on the command line: it does reach it
    own = built()  # the group file's own class keeps the group's values
    assert (own.hparams.input_dim, own.hparams.output_dim, own.hparams.lr) == (10, 1, 0.05)
    with pytest.raises(UserError, match=r"takes no arguments \['depth'\]"):
        built("model._target_=unified_models.Regressor", "+model.depth=3")
