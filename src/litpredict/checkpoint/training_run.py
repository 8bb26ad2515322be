"""The training run a checkpoint came from: its own config, found beside the checkpoint.

A checkpoint inside a training run directory has the run's config next to it: Hydra runs
(lightning-hydra-template, ``litpredict.train``) keep ``<run>/.hydra/config.yaml`` with a
``model`` node of ``_target_`` form; LightningCLI keeps ``<log dir>/version_N/config.yaml``
with ``class_path``/``init_args``. Either is read as data (YAML, nothing called) and turned
into ``_target_`` nodes for the model and the datamodule; the caller checks every target
before anything is built (:mod:`litpredict.checkpoint.targets`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litpredict.process.errors import CheckpointError, first_line

HYDRA = "hydra"
LIGHTNING_CLI = "lightning_cli"
SEARCH_DEPTH = 4  # folders above the checkpoint's own that may hold the run's config
PROJECT_MARK = ".project-root"  # rootutils' mark of an LHT project's root
MAIN = "__main__."


@dataclass
class TrainingRun:
    """A training run's config file and the model and data nodes it describes."""

    config_file: Path
    kind: str  # HYDRA or LIGHTNING_CLI
    model: dict[str, Any]
    data: dict[str, Any] | None
    project_root: Path | None = None
    source: str | None = None  # the URL of a config found beside a remote checkpoint

    @property
    def shown(self) -> str:
        """How messages and the manifest name the config: its URL, else its path."""
        return self.source or str(self.config_file)

    def record(self) -> dict[str, Any]:
        """What the manifest says of the config used: path, sha256, kind."""
        digest = hashlib.sha256(self.config_file.read_bytes()).hexdigest()
        return {"path": self.shown, "sha256": digest, "kind": self.kind}


def candidates(ckpt_file: Path) -> list[Path]:
    """Where a run's config may be, nearest first: ``.hydra/config.yaml``, ``config.yaml``."""
    found = []
    folder = ckpt_file.resolve().parent
    for _ in range(SEARCH_DEPTH):
        found += [folder / ".hydra" / "config.yaml", folder / "config.yaml"]
        if folder.parent == folder:
            break
        folder = folder.parent
    return found


def find_training_run(ckpt_file: Path) -> TrainingRun | None:
    """The training run ``ckpt_file`` lies in, or None when no config with a model is found."""
    for path in candidates(ckpt_file):
        if path.is_file():
            run = read_training_run(path)
            if run is not None:
                return run
    return None


def url_candidates(url: str) -> list[str]:
    """:func:`candidates` beside a remote checkpoint: ``<prefix>/.hydra/config.yaml``, ..."""
    from litpredict.remote import urls

    found = []
    folder = urls.parent(url)
    for _ in range(SEARCH_DEPTH):
        found += [urls.join(folder, ".hydra", "config.yaml"), urls.join(folder, "config.yaml")]
        if urls.parent(folder) == folder:
            break
        folder = urls.parent(folder)
    return found


def find_remote_training_run(url: str) -> TrainingRun | None:
    """The training run of a checkpoint at ``url``: its config fetched from beside it (each
    candidate is one HEAD request; a config found is cached like the checkpoint)."""
    from litpredict.process.errors import RemoteNotFound
    from litpredict.remote.cache import fetch

    for candidate in url_candidates(url):
        try:
            fetched = fetch(candidate)
        except RemoteNotFound:
            continue
        run = read_training_run(fetched.path, source=candidate)
        if run is not None:
            return run
    return None


def read_training_run(path: Path, source: str | None = None) -> TrainingRun | None:
    """The run config at ``path`` (None when it describes no model); ``source``: its URL
    (a fetched config has no project folder around it)."""
    from omegaconf import DictConfig, OmegaConf

    try:
        config = OmegaConf.load(path)
    except Exception as error:
        raise CheckpointError(
            f"the training run's config {source or path} cannot be read: {first_line(error)}",
            "repair it, or choose the model yourself (model=... or model._target_=...)",
        ) from None
    if not isinstance(config, DictConfig) or not isinstance(config.get("model"), DictConfig):
        return None
    project_root = None if source else _project_root(path)
    resolved = _resolved(config, source or path, project_root)
    model, data = resolved.get("model"), resolved.get("data", resolved.get("datamodule"))
    cli = _is_cli(model) or _is_cli(data)
    if cli:
        model, data = from_cli(model), from_cli(data) if data is not None else None
    return TrainingRun(
        config_file=path.resolve(),
        kind=LIGHTNING_CLI if cli else HYDRA,
        model=model,
        data=data if isinstance(data, dict) and {"_target_", "unresolved"} & set(data) else None,
        project_root=project_root,
        source=source,
    )


def _project_root(path: Path) -> Path | None:
    for folder in path.resolve().parents:
        if (folder / PROJECT_MARK).exists():
            return folder
    return None


def _resolved(config: Any, path: Path | str, project_root: Path | None) -> dict[str, Any]:
    """``model`` and ``data`` resolved as in training where they can be.

    LHT's paths end in ``${oc.env:PROJECT_ROOT}``, which rootutils set to the folder holding
    ``.project-root``; Hydra's ``${hydra:...}`` is only known inside the training job, so a
    value using it stays unresolved (and is an error only if the model needs it).
    """
    from omegaconf import OmegaConf

    restore = os.environ.get("PROJECT_ROOT")
    if restore is None and project_root is not None:
        os.environ["PROJECT_ROOT"] = str(project_root)
    try:
        result = {}
        for key in ("model", "data", "datamodule"):
            if key not in config:
                continue
            try:
                result[key] = OmegaConf.to_container(config[key], resolve=True)
            except Exception as error:
                if key == "model":
                    raise CheckpointError(
                        f"the training run's config {path} has a model node that does not "
                        f"resolve here: {first_line(error)}",
                        "set the variable it names, or override those model.* keys",
                    ) from None
                result[key] = {"unresolved": f"{key}: {first_line(error)}"}
        return result
    finally:
        if restore is None:
            os.environ.pop("PROJECT_ROOT", None)


def _is_cli(node: Any) -> bool:
    """LightningCLI's form: ``class_path``/``init_args`` somewhere, no ``_target_`` on top."""
    if not isinstance(node, dict) or "_target_" in node:
        return False
    if "class_path" in node:
        return True
    return any(isinstance(v, dict) and "class_path" in v for v in node.values())


def from_cli(node: Any) -> Any:
    """LightningCLI's ``{class_path, init_args}`` nodes as Hydra's ``{_target_, ...}``.

    A single model class's init arguments have no ``class_path`` on top (LightningCLI wrote
    the class it was given): that node keeps no ``_target_`` and the class comes from the
    checkpoint or the command line.
    """
    if isinstance(node, list):
        return [from_cli(v) for v in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("class_path"), str):
        arguments = node.get("init_args") or {}
        if not isinstance(arguments, dict):
            arguments = {}
        return {"_target_": node["class_path"], **{k: from_cli(v) for k, v in arguments.items()}}
    return {k: from_cli(v) for k, v in node.items()}


def main_targets(node: Any) -> list[str]:
    """Every ``__main__.X`` target in ``node``: classes of a training script run as a script."""
    if isinstance(node, dict):
        own = [node["_target_"]] if str(node.get("_target_", "")).startswith(MAIN) else []
        return own + [t for k, v in node.items() if k != "_target_" for t in main_targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in main_targets(v)]
    return []


def with_module(node: Any, module: str) -> Any:
    """``node`` with every ``__main__.X`` target read as ``<module>.X``."""
    if isinstance(node, dict):
        return {
            k: (
                f"{module}.{v[len(MAIN) :]}"
                if k == "_target_" and str(v).startswith(MAIN)
                else with_module(v, module)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [with_module(v, module) for v in node]
    return node


def importable_project(run: TrainingRun) -> None:
    """The LHT project's root on ``sys.path``, as rootutils' ``pythonpath=True`` put it there
    for training (``src.models...`` targets import from any working directory)."""
    if run.project_root is not None and str(run.project_root) not in sys.path:
        sys.path.append(str(run.project_root))
