"""Train one short run per experiment, predict with its checkpoint, check every file.

The predictions must equal predictions computed from the checkpoint's raw state_dict
with plain torch: the proof that the checkpoint was really loaded. The real command runs
where its own part is under test (the linear run, the run directory's files); the rest run
in-process (``predict_in_process``, ``compose_predict``).
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from conftest import EXPERIMENTS, compose_predict, predict_in_process, read_manifest, run_cli
from litpredict.process.errors import UserError
from plain_torch import FORWARD, state_dict

pytestmark = pytest.mark.slow


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_writes_one_checkpoint_per_epoch_and_last(trained) -> None:
    names = sorted(p.name for p in (trained["linear_regression"] / "checkpoints").iterdir())
    assert names == ["epoch=0-step=64.ckpt", "epoch=1-step=128.ckpt", "last.ckpt"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_predictions_match_the_checkpoint_state_dict(experiment, trained, tmp_path) -> None:
    ckpt = trained[experiment] / "checkpoints" / "epoch=0-step=64.ckpt"
    if not ckpt.exists():  # step counts differ per experiment
        ckpt = sorted((trained[experiment] / "checkpoints").glob("epoch=0-*.ckpt"))[0]
    run_dir = tmp_path / "run"
    overrides = [f"experiment={experiment}", f"ckpt_path='{ckpt}'", f"hydra.run.dir={run_dir}"]
    if experiment == "linear_regression":  # the real command once; the others in-process
        run_cli("predict", *overrides, cwd=tmp_path)
    else:
        predict_in_process(tmp_path, *overrides)

    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete"
    assert manifest["checkpoint"]["sha256"] == sha256(ckpt)
    assert manifest["checkpoint"]["epoch"] == 0
    for output in manifest["outputs"]:
        assert sha256(run_dir / output["path"]) == output["sha256"]

    predictions = np.load(run_dir / "predictions.npy")
    demo = instantiate(manifest["config"]["datamodule"]).split("predict")
    assert manifest["num_predictions"] == len(demo) == len(predictions)
    expected = FORWARD[experiment](state_dict(ckpt), demo.features)
    if experiment == "image_classification":
        np.testing.assert_array_equal(predictions, expected)
        assert manifest["metrics"]["accuracy"] > 0.5  # 10 classes: chance is 0.1
    else:
        np.testing.assert_allclose(predictions, expected, rtol=1e-5, atol=1e-5)
        baseline = float(np.mean((demo.targets - demo.targets.mean()) ** 2))
        assert manifest["metrics"]["mse"] < 0.5 * baseline  # clearly learnt


def test_run_dir_holds_outputs_log_and_no_stray_files(trained, tmp_path) -> None:
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    run_cli("predict", f"ckpt_path='{ckpt}'", cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "predict").iterdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]  # no lightning_logs/
    names = {p.name for p in run_dir.iterdir()}
    assert {"manifest.json", "predictions.npy", "predict.log", ".hydra"} <= names
    assert not {".shards", ".staging"} & names
    manifest = read_manifest(run_dir)
    assert manifest["overrides"] == [f"ckpt_path='{ckpt}'"]
    assert manifest["versions"]["torch"] and manifest["versions"]["pytorch_lightning"]
    assert manifest["config"]["ckpt_path"] == str(ckpt)
    assert manifest["world_size"] == 1 and manifest["seed"] == 12345
    assert manifest["duration_s"] >= 0 and manifest["finished_at"]


def test_two_runs_in_the_same_second_get_two_directories(trained, tmp_path, monkeypatch) -> None:
    """With the clock frozen, only the unique id (``lp_uid``) tells two runs apart."""
    import hydra.core.utils
    from hydra.core.hydra_config import HydraConfig

    from litpredict.predict import predict
    from litpredict.process.job import Job

    class SameSecond(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2024, 1, 2, 3, 4, 5)

    monkeypatch.setattr(hydra.core.utils, "datetime", SameSecond)  # what ${now:} reads
    monkeypatch.setenv("LITPREDICT_OUTPUTS", str(tmp_path / "outputs"))
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    runs, sweeps = [], []
    for _ in range(2):
        config = compose_predict(f"ckpt_path={ckpt}")
        hydra_config = HydraConfig.get()
        runs.append(Path(hydra_config.runtime.output_dir))
        sweeps.append(hydra_config.sweep.dir)
        assert predict(config, Job.from_hydra())["status"] == "complete"
    assert all(r.name.startswith("2024-01-02_03-04-05") for r in runs)
    assert runs[0] != runs[1] and sweeps[0] != sweeps[1]
    assert sorted((tmp_path / "outputs" / "predict").iterdir()) == sorted(runs)
    assert all(read_manifest(r)["status"] == "complete" for r in runs)


def test_checkpoint_hyperparameters_rebuild_the_model(tmp_path) -> None:
    """A checkpoint trained with hidden_size=16 predicts as such; contradicting it fails."""
    from litpredict.process.job import Job
    from litpredict.train import train

    train_dir = tmp_path / "train"
    config = compose_predict(
        "experiment=sequence",
        "model.hidden_size=16",
        "trainer.max_epochs=1",
        "datamodule.n_train=256",
        run_dir=train_dir,
        config_name="train",
    )
    train(config, Job.from_hydra())
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    ok = predict_in_process(
        tmp_path, "experiment=sequence", f"ckpt_path='{ckpt}'", f"hydra.run.dir={tmp_path / 'ok'}"
    )
    assert ok["config"]["model"]["hidden_size"] == 128  # config as given
    with pytest.raises(UserError, match="hidden_size: checkpoint=16 config=64"):
        predict_in_process(
            tmp_path,
            "experiment=sequence",
            "model.hidden_size=64",
            f"ckpt_path='{ckpt}'",
            f"hydra.run.dir={tmp_path / 'bad'}",
        )
    assert read_manifest(tmp_path / "bad")["status"] == "failed"


def test_a_checkpoint_of_another_model_is_refused(trained, tmp_path) -> None:
    ckpt = trained["sequence"] / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=r"trained with litpredict\.models\.lstm\.LSTMSequence"):
        predict_in_process(tmp_path, "model=linear", f"ckpt_path='{ckpt}'")
    assert read_manifest(tmp_path / "run")["status"] == "failed"
