"""Every config group composes, with Hydra's compose API on the real conf/ tree."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

import litpredict.process.resolvers  # noqa: F401  (conf/ uses litpredict's resolvers)
from litpredict.process.config_dir import config_dir

CONF = Path(config_dir())


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def test_contract_choices_exist() -> None:
    assert {"linear", "cnn", "lstm"} <= set(choices("model"))
    assert {"cifar10", "image_folder", "array_file"} <= set(choices("datamodule"))
    assert {"cpu", "gpu", "ddp", "ddp_cpu"} <= set(choices("trainer"))
    assert {"npy", "parquet", "csv", "pt"} <= set(choices("writer"))
    assert {"linear_regression", "image_classification", "sequence"} <= set(choices("experiment"))


GROUP_CHOICES = [
    (config_name, group, choice)
    for config_name in ("predict", "train")
    for group in ("model", "datamodule", "trainer", "writer", "experiment")
    if not (config_name == "train" and group == "writer")
    for choice in choices(group)
]


@pytest.mark.parametrize("config_name,group,choice", GROUP_CHOICES)
def test_every_choice_composes_and_names_real_classes(config_name, group, choice) -> None:
    cfg = composed(config_name, [f"{group}={choice}"])
    for node in ("model", "datamodule", "trainer") + (
        ("writer",) if config_name == "predict" else ()
    ):
        if node == "datamodule" and cfg.datamodule.get("from_run"):
            continue  # the class comes from the training run's config
        get_class(cfg[node]._target_)  # importable


@pytest.mark.parametrize("model", ["linear", "cnn", "lstm"])
def test_model_choice_brings_its_demo_data(model) -> None:
    cfg = composed("predict", [f"model={model}"])
    assert (
        cfg.datamodule._target_.split(".")[-1]
        == {
            "linear": "RegressionDemo",
            "cnn": "ImageDemo",
            "lstm": "SequenceDemo",
        }[model]
    )


def test_experiment_sets_model_and_data_and_command_line_wins() -> None:
    cfg = composed("predict", ["experiment=image_classification"])
    assert cfg.model._target_.endswith("CNNClassifier")
    assert cfg.datamodule._target_.endswith("ImageDemo")
    cfg = composed("predict", ["experiment=image_classification", "datamodule=image_folder"])
    assert cfg.datamodule._target_.endswith("ImageFolderDataModule")


@pytest.mark.parametrize("config_name", ["predict", "train"])
def test_image_folders_keep_their_size_unless_the_experiment_needs_one(config_name) -> None:
    """experiment=image_classification's CNN takes 32x32: an image folder chosen on the
    command line with it is resized to 32; elsewhere nothing is, and CIFAR-10 gets no key."""
    ckpt = ["ckpt_path=x.ckpt"] if config_name == "predict" else []

    def image_size(*overrides: str):
        cfg = composed(config_name, [*ckpt, *overrides])
        return cfg.datamodule.get("image_size", "absent"), cfg.datamodule._target_.split(".")[-1]

    folder, experiment = "datamodule=image_folder", "experiment=image_classification"
    assert image_size(folder) == (None, "ImageFolderDataModule")
    assert image_size(experiment, folder) == (32, "ImageFolderDataModule")
    assert image_size(folder, experiment) == (32, "ImageFolderDataModule")
    assert image_size(experiment, folder, "datamodule.image_size=64")[0] == 64
    assert image_size(experiment, folder, "datamodule.image_size=[24,32]")[0] == [24, 32]
    assert image_size(experiment, folder, "datamodule.image_size=null")[0] is None
    assert image_size("model=cnn", folder)[0] is None  # no experiment: the files' size
    assert image_size("experiment=linear_regression", folder)[0] is None
    assert image_size(experiment) == (32, "ImageDemo")
    assert image_size(experiment, "datamodule=cifar10") == ("absent", "CIFAR10DataModule")


LOADER_KEYS = {"batch_size", "train_batch_size", "num_workers", "pin_memory", "persistent_workers"}


@pytest.mark.parametrize("choice", [c for c in choices("datamodule") if c != "from_run"])
def test_every_datamodule_takes_the_shared_loader_options(choice) -> None:
    """conf/loader/default.yaml, outside the datamodule group, is the base of each choice."""
    cfg = composed("predict", [f"datamodule={choice}"])
    assert set(cfg.datamodule) >= LOADER_KEYS


def test_ckpt_path_is_required_and_seed_fixed() -> None:
    cfg = composed("predict", [])
    assert OmegaConf.is_missing(cfg, "ckpt_path")
    assert isinstance(cfg.seed, int)


def test_help_and_cfg_are_fast_and_do_not_import_torch(tmp_path) -> None:
    probe = (
        "import sys, runpy; sys.argv = ['predict', '--cfg', 'job'];\n"
        "try:\n    runpy.run_module('litpredict.predict', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported for --cfg'\n"
    )
    subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, capture_output=True)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "litpredict.predict", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert "model: cnn, linear, lstm" in result.stdout
    assert time.perf_counter() - start < 5  # the 1.5 s target is measured by scripts/bench.py
    assert not any(tmp_path.iterdir()), "--help must not write into the working directory"


@pytest.mark.parametrize(
    "typed,parsed",
    [
        ("ckpt_path=/runs/epoch=3-step=100.ckpt", "/runs/epoch=3-step=100.ckpt"),
        ("ckpt_path=/runs/my model/last.ckpt", "/runs/my model/last.ckpt"),
        ("ckpt_path='/runs/epoch=3-step=100.ckpt'", "/runs/epoch=3-step=100.ckpt"),
        ("ckpt_path=/runs/plain.ckpt", "/runs/plain.ckpt"),
    ],
)
def test_checkpoint_names_with_equals_need_no_quoting(typed, parsed) -> None:
    from litpredict.process.argv import quote_checkpoint_paths

    (override,) = quote_checkpoint_paths([typed])
    assert composed("predict", [override]).ckpt_path == parsed


def test_sweep_syntax_is_left_as_typed() -> None:
    from litpredict.process.argv import quote_checkpoint_paths

    typed = ["ckpt_path=glob(runs/*.ckpt)", "ckpt_path=a.ckpt,b.ckpt", 'ckpt_path="a=1.ckpt"']
    assert quote_checkpoint_paths(typed) == typed
