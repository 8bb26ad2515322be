"""Checkpoints as real projects write them predict with zero code changes (#12, #15.2).

Each model is written in its project's style (tests/lht_style: lightning-hydra-template on
``lightning``; tests/cli_style.py: LightningCLI and plain ``save_hyperparameters()`` on
``pytorch_lightning``), trained by its own package's Trainer on tiny data, and its
predictions compared with an oracle computed from the raw ``state_dict``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import predict_in_process, read_manifest, run_cli
from litpredict.process.errors import CheckpointError

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
LHT_CONFIGS = TESTS / "lht_style" / "configs"


class RunsCode:
    """Unpickling this runs a shell command: what a malicious checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _quiet(trainer_class, root: Path, **kwargs):
    return trainer_class(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        **kwargs,
    )


def _loader(x, y, batch_size: int = 8):
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _raw_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The oracle's weights: the file as torch reads it (the test's own file, trusted)."""
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def _mlp(state: dict[str, torch.Tensor], prefix: str, x: torch.Tensor, layers: list[str], act):
    """Linear layers named ``prefix + layer`` with ``act`` between them, from raw tensors."""
    for i, layer in enumerate(layers):
        x = x @ state[f"{prefix}{layer}.weight"].T + state[f"{prefix}{layer}.bias"]
        if i < len(layers) - 1:
            x = act(x)
    return x


def _save_arrays(root: Path, x: torch.Tensor, y: torch.Tensor) -> tuple[Path, Path]:
    np.save(root / "x.npy", x.numpy())
    np.save(root / "y.npy", y.numpy())
    return root / "x.npy", root / "y.npy"


def lht_overrides(root: Path, x: torch.Tensor, y: torch.Tensor, ckpt: Path) -> list[str]:
    """Predict an LHT checkpoint with its own model group (``hydra.searchpath``) on ``x, y``."""
    x_file, y_file = _save_arrays(root, x, y)
    return [
        f"hydra.searchpath=[file://{LHT_CONFIGS}]",
        "model=mnist",
        "datamodule=array_file",
        f"datamodule.path={x_file}",
        f"datamodule.target_path={y_file}",
        f"ckpt_path={ckpt}",
    ]


# --- lightning-hydra-template ------------------------------------------------------------


@pytest.fixture(scope="module")
def lht(tmp_path_factory):
    """An LHT module built from its config and fitted by ``lightning.Trainer``."""
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    root = tmp_path_factory.mktemp("lht")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 3, 4, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    model = instantiate(OmegaConf.load(LHT_CONFIGS / "model" / "mnist.yaml"))
    trainer = _quiet(L.Trainer, root, max_epochs=2, num_sanity_val_steps=0)
    trainer.fit(model, _loader(x, y), _loader(x, y))
    trainer.save_checkpoint(root / "last.ckpt")
    return root / "last.ckpt", x, y


def _lht_oracle(path: Path, x: torch.Tensor) -> np.ndarray:
    # a compiled net's weights are saved under net._orig_mod.*: the same tensors
    state = {k.replace("._orig_mod.", "."): v for k, v in _raw_state_dict(path).items()}
    h = x.reshape(len(x), -1)
    for linear, norm in (("0", "1"), ("3", "4"), ("6", "7")):
        h = h @ state[f"net.model.{linear}.weight"].T + state[f"net.model.{linear}.bias"]
        p = f"net.model.{norm}."
        h = (h - state[p + "running_mean"]) / torch.sqrt(state[p + "running_var"] + 1e-5)
        h = torch.relu(h * state[p + "weight"] + state[p + "bias"])
    return (h @ state["net.model.9.weight"].T + state["net.model.9.bias"]).numpy()


def test_lht_checkpoint_holds_pickled_objects_that_plain_torch_refuses(lht) -> None:
    path, _, _ = lht
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)


def test_lht_checkpoint_with_its_own_config_via_searchpath(lht, tmp_path, caplog) -> None:
    path, x, y = lht
    with caplog.at_level(logging.INFO, logger="litpredict"):
        manifest = predict_in_process(tmp_path, *lht_overrides(tmp_path, x, y, path))
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, _lht_oracle(path, x), rtol=1e-4, atol=1e-5)
    assert manifest["status"] == "complete"
    assert sorted(manifest["checkpoint"]["dropped_hyperparameters"]) == [
        "net",
        "optimizer",
        "scheduler",
    ]
    assert manifest["metrics"]  # the labels still reach the metrics
    assert "compiled" not in manifest["checkpoint"]
    assert "hyperparameters dropped (built from the config instead): net, optimizer" in caplog.text


def test_lht_checkpoint_through_the_command(lht, tmp_path) -> None:
    """The CLI's own part: ``hydra.searchpath`` on the command line, a package in cwd."""
    path, x, y = lht
    x_file, _ = _save_arrays(tmp_path, x, y)
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        f"hydra.searchpath=[file://{LHT_CONFIGS}]",
        "model=mnist",
        "datamodule=array_file",
        f"datamodule.path={x_file}",
        f"ckpt_path={path}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    predictions = np.load(run_dir / "predictions.npy")
    np.testing.assert_allclose(predictions, _lht_oracle(path, x), rtol=1e-4, atol=1e-5)
    assert read_manifest(run_dir)["checkpoint"]["dropped_hyperparameters"]


@pytest.fixture(scope="module")
def lht_compiled(tmp_path_factory):
    """LHT's ``model.compile=true``: ``setup`` wraps ``net`` in ``torch.compile`` before the fit.

    Fitted under ``set_stance("force_eager")``: the module is the real ``OptimizedModule``
    (its weights save as ``net._orig_mod.*``) but runs eagerly, as inductor takes ~30 s to
    compile on this CPU.
    """
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    root = tmp_path_factory.mktemp("lht_compiled")
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(40, 1, 3, 4, generator=generator)
    y = torch.randint(0, 3, (40,), generator=generator)
    model = instantiate(OmegaConf.load(LHT_CONFIGS / "model" / "mnist.yaml"), compile=True)
    trainer = _quiet(L.Trainer, root, max_epochs=1, num_sanity_val_steps=0)
    with torch.compiler.set_stance("force_eager"):
        trainer.fit(model, _loader(x, y), _loader(x, y))
    assert type(model.net).__name__ == "OptimizedModule"
    trainer.save_checkpoint(root / "last.ckpt")
    return root / "last.ckpt", x, y


def test_a_compiled_lht_checkpoint_predicts_as_its_plain_net(lht_compiled, tmp_path) -> None:
    from lht_style.simple_dense_net import SimpleDenseNet

    path, x, y = lht_compiled
    state = _raw_state_dict(path)
    assert "net._orig_mod.model.0.weight" in state
    manifest = predict_in_process(
        tmp_path,
        *lht_overrides(tmp_path, x, y, path),
        "datamodule.batch_size=64",  # one batch, as the oracle's
    )
    net = SimpleDenseNet(input_size=12, lin1_size=8, lin2_size=8, lin3_size=8, output_size=3)
    prefix = "net._orig_mod."
    net.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "run" / "predictions.npy"), expected)
    assert manifest["status"] == "complete"
    assert manifest["checkpoint"]["compiled"] is True


def test_a_compiled_checkpoint_that_does_not_fit_still_says_so(lht_compiled, tmp_path) -> None:
    path, x, y = lht_compiled
    x_file, _ = _save_arrays(tmp_path, x, y)
    with pytest.raises(CheckpointError) as caught:
        predict_in_process(
            tmp_path,
            f"hydra.searchpath=[file://{LHT_CONFIGS}]",
            "model=mnist",
            "model.net.lin1_size=16",
            "datamodule=array_file",
            f"datamodule.path={x_file}",
            f"ckpt_path={path}",
        )
    problem = caught.value.problem
    assert "does not fit MNISTLitModule" in problem
    assert "net.model.0.weight: checkpoint (8, 12) vs model (16, 12)" in problem
    assert "torch.compile" in problem
    assert "model" in caught.value.fix


def test_only_orig_mod_segments_that_make_a_models_key_are_dropped() -> None:
    from litpredict.checkpoint.model import uncompiled_state_dict

    own = {"net.model.0.weight": 0, "net.model.0.bias": 0, "head._orig_mod": 0}
    saved = {
        "net._orig_mod.model.0.weight": 1,  # -> net.model.0.weight
        "_orig_mod.net.model.0.bias": 2,  # a leading segment too
        "net._orig_mod.other.weight": 3,  # no such key in the model: kept as saved
        "head._orig_mod": 4,  # a name, not a segment: the model's own key
    }
    assert uncompiled_state_dict(saved, own) == {
        "net.model.0.weight": 1,
        "net.model.0.bias": 2,
        "net._orig_mod.other.weight": 3,
        "head._orig_mod": 4,
    }
    plain = {"net.model.0.weight": 1}
    assert uncompiled_state_dict(plain, own) is plain


# --- a hostile payload ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """A plain ``save_hyperparameters()`` model fitted by ``pytorch_lightning.Trainer``."""
    import pytorch_lightning as pl

    from cli_style import PlainRegressor

    root = tmp_path_factory.mktemp("plain")
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(30, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)
    model = PlainRegressor(hidden=5)
    trainer = _quiet(pl.Trainer, root, max_steps=4)
    trainer.fit(model, _loader(x, y))
    trainer.save_checkpoint(root / "plain.ckpt")
    return root / "plain.ckpt", x, y


def _plain_oracle(path: Path, x: torch.Tensor) -> np.ndarray:
    state = _raw_state_dict(path)
    return (_mlp(state, "body.", x, ["0", "2"], torch.relu) + 100.0).numpy()


def test_plain_checkpoint_with_its_own_predict_step(plain, tmp_path) -> None:
    """The model's predict_step gets the (x, y) batch as Lightning gives it (it adds 100)."""
    path, x, y = plain
    x_file, y_file = _save_arrays(tmp_path, x, y)
    manifest = predict_in_process(
        tmp_path,
        "model._target_=cli_style.PlainRegressor",
        "datamodule=array_file",
        f"datamodule.path={x_file}",
        f"datamodule.target_path={y_file}",
        f"ckpt_path={path}",
    )
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, _plain_oracle(path, x), rtol=1e-5, atol=1e-5)
    assert "dropped_hyperparameters" not in manifest["checkpoint"]


def test_a_hostile_reduce_payload_in_hyperparameters_never_runs(plain, tmp_path) -> None:
    path, x, y = plain
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["payload"] = RunsCode(tmp_path / "PWNED")
    checkpoint["hyper_parameters"]["nested"] = {"deeper": [RunsCode(tmp_path / "PWNED2")]}
    checkpoint["callbacks"] = {"evil": RunsCode(tmp_path / "PWNED3")}
    torch.save(checkpoint, tmp_path / "hostile.ckpt")
    x_file, _ = _save_arrays(tmp_path, x, y)
    manifest = predict_in_process(
        tmp_path,
        "model._target_=cli_style.PlainRegressor",
        "datamodule=array_file",
        f"datamodule.path={x_file}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={tmp_path / 'hostile.ckpt'}",
    )
    assert not any((tmp_path / name).exists() for name in ("PWNED", "PWNED2", "PWNED3"))
    predictions = np.load(tmp_path / "run" / "predictions.npy")
    np.testing.assert_allclose(predictions, _plain_oracle(path, x), rtol=1e-5, atol=1e-5)
    assert sorted(manifest["checkpoint"]["dropped_hyperparameters"]) == ["nested", "payload"]


def test_a_payload_in_the_state_dict_is_refused_and_never_runs(plain, tmp_path) -> None:
    path, _, _ = plain
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"]["body.0.weight"] = RunsCode(tmp_path / "PWNED")
    torch.save(checkpoint, tmp_path / "hostile.ckpt")
    with pytest.raises(CheckpointError, match=r"pickled Python object \(posix.system\)"):
        predict_in_process(
            tmp_path,
            "model._target_=cli_style.PlainRegressor",
            f"ckpt_path={tmp_path / 'hostile.ckpt'}",
        )
    assert not (tmp_path / "PWNED").exists()


def test_hyperparameters_naming_a_callable_are_never_called(plain, tmp_path, caplog) -> None:
    """``_target_`` in the hyperparameters is ignored; ``command`` is not an init argument."""
    path, x, y = plain
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"].update(
        _target_="os.system", command=f"touch {tmp_path / 'CALLED'}"
    )
    torch.save(checkpoint, tmp_path / "calls.ckpt")
    x_file, y_file = _save_arrays(tmp_path, x, y)
    with caplog.at_level(logging.INFO, logger="litpredict"):
        predict_in_process(
            tmp_path,
            "model._target_=cli_style.PlainRegressor",
            "datamodule=array_file",
            f"datamodule.path={x_file}",
            f"datamodule.target_path={y_file}",
            f"ckpt_path={tmp_path / 'calls.ckpt'}",
        )
    assert not (tmp_path / "CALLED").exists()
    assert "hyperparameters command ignored" in caplog.text


# --- argument plumbing ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_hparams(tmp_path_factory):
    import pytorch_lightning as pl

    from cli_style import NoHyperparameters

    root = tmp_path_factory.mktemp("nohp")
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(24, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)
    trainer = _quiet(pl.Trainer, root, max_steps=3)
    trainer.fit(NoHyperparameters(), _loader(x, y))
    trainer.save_checkpoint(root / "nohp.ckpt")
    return root / "nohp.ckpt", x


def test_the_replaced_groups_defaults_do_not_reach_another_class(no_hparams, tmp_path) -> None:
    """model=linear's input_dim=10, output_dim=1 would not fit: the class's own defaults do."""
    path, x = no_hparams
    np.save(tmp_path / "x.npy", x.numpy())
    predict_in_process(
        tmp_path,
        "model._target_=cli_style.NoHyperparameters",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"ckpt_path={path}",
    )
    state = _raw_state_dict(path)
    expected = (x @ state["linear.weight"].T + state["linear.bias"]).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "run" / "predictions.npy"), expected, rtol=1e-5)


def test_an_explicit_value_that_contradicts_the_checkpoint_stops_the_run(plain, tmp_path) -> None:
    path, _, _ = plain
    with pytest.raises(CheckpointError, match="hidden: checkpoint=5 config=7"):
        predict_in_process(
            tmp_path,
            "model._target_=cli_style.PlainRegressor",
            "+model.hidden=7",
            f"ckpt_path={path}",
        )


def test_an_unknown_key_on_the_command_line_is_still_an_error(plain, tmp_path) -> None:
    path, _, _ = plain
    with pytest.raises(CheckpointError, match=r"takes no arguments \['hiden'\]"):
        predict_in_process(
            tmp_path,
            "model._target_=cli_style.PlainRegressor",
            "+model.hiden=7",
            f"ckpt_path={path}",
        )


# --- LightningCLI --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lightning_cli(tmp_path_factory):
    """A checkpoint written by a real ``LightningCLI(..., run=False)`` + ``trainer.fit``."""
    from pytorch_lightning.cli import LightningCLI

    from cli_style import CLIRegressor

    root = tmp_path_factory.mktemp("cli")
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(32, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True)
    cli = LightningCLI(
        CLIRegressor,
        run=False,
        save_config_callback=None,
        args=[
            "--model.net=cli_style.TinyNet",
            "--model.net.init_args.hidden=3",
            "--model.lr=0.05",
            "--trainer.max_steps=4",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={root}",
        ],
    )
    cli.trainer.fit(cli.model, _loader(x, y))
    cli.trainer.save_checkpoint(root / "cli.ckpt")
    return root / "cli.ckpt", x


def test_lightning_cli_checkpoint_rebuilds_its_class_path_submodule(lightning_cli, tmp_path):
    path, x = lightning_cli
    saved = torch.load(path, weights_only=True)["hyper_parameters"]
    assert saved["net"]["class_path"] == "cli_style.TinyNet"  # what LightningCLI stores
    np.save(tmp_path / "x.npy", x.numpy())
    predict_in_process(
        tmp_path,
        "model._target_=cli_style.CLIRegressor",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"ckpt_path={path}",
    )
    state = _raw_state_dict(path)
    expected = _mlp(state, "net.layers.", x, ["0", "2"], torch.tanh).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "run" / "predictions.npy"), expected, rtol=1e-5)


@pytest.mark.parametrize("class_path", ["builtins.eval", "os.system", "nowhere_pkg.Net"])
def test_a_class_path_that_is_no_torch_module_is_refused_by_name(
    lightning_cli, tmp_path, class_path
) -> None:
    path, _ = lightning_cli
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["net"] = {"class_path": class_path, "init_args": {}}
    torch.save(checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=f"names '{class_path}'.*refusing to call it"):
        predict_in_process(
            tmp_path, "model._target_=cli_style.CLIRegressor", f"ckpt_path={tmp_path / 'bad.ckpt'}"
        )
    assert "nowhere_pkg" not in __import__("sys").modules


def test_the_inputs_predict_step_survives_pickling(lightning_cli) -> None:
    """ddp_spawn pickles the model to its workers: the step must follow the copy."""
    import pickle

    from cli_style import CLIRegressor, TinyNet
    from litpredict.checkpoint.predict_step import predict_from_inputs

    model = CLIRegressor(TinyNet(hidden=3)).eval()
    predict_from_inputs(model)
    copy = pickle.loads(pickle.dumps(model))
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.equal(copy.predict_step((x, torch.zeros(5, 1)), 0), copy(x))
    assert copy.predict_step.args[1] is copy  # (the step, the model it calls)


@pytest.mark.ddp
def test_a_model_without_predict_step_under_ddp_spawn(lightning_cli, tmp_path) -> None:
    path, x = lightning_cli
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", x.sum(dim=1, keepdim=True).numpy())
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        "trainer=ddp_cpu",
        "model._target_=cli_style.CLIRegressor",
        "datamodule=array_file",
        f"datamodule.path={tmp_path / 'x.npy'}",
        f"datamodule.target_path={tmp_path / 'y.npy'}",
        f"ckpt_path={path}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    state = _raw_state_dict(path)
    expected = _mlp(state, "net.layers.", x, ["0", "2"], torch.tanh).numpy()
    np.testing.assert_allclose(np.load(run_dir / "predictions.npy"), expected, rtol=1e-5)
    assert "mse" in read_manifest(run_dir)["metrics"]  # the labels still reach the metrics
