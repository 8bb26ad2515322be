"""What re-running a run directory builds, which of its inputs changed, and the verdict.

A run directory is data: its manifest's config is checked target by target before
anything is built, and nothing it names is called here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

EXIT_DIFFERENT = 1
# What predict builds from a config, and the kind each must be (checkpoint.targets.KINDS).
BUILT = {
    "model": "LightningModule",
    "datamodule": "LightningDataModule",
    "trainer": "Trainer",
    "writer": "PredictionWriter",
}


def rewrite(value: Any, old: str, new: str) -> Any:
    """Replace the old run directory in every resolved string of the config."""
    if isinstance(value, dict):
        return {k: rewrite(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old) :]
    return value


def anchored_data_paths(
    config: dict[str, Any], recorded_cwd: Any, data: Any
) -> tuple[dict[str, Any], list[str]]:
    """The config with each relative path the run read as data joined to its recorded cwd.

    ``reproduce`` never changes into a directory a manifest names (unless asked): a
    relative data path (``datamodule.path=x.npy``) is resolved against the recorded
    ``cwd`` as data, not by running there. Only strings that name a file or folder the
    manifest's ``data`` fingerprint lists are joined, so no other value changes; the lines
    say which (``key: old -> new``).
    """
    if not isinstance(recorded_cwd, str) or not os.path.isabs(recorded_cwd):
        return config, []
    read = {
        str(entry["path"])
        for entry in (data if isinstance(data, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("path"), str)
    }
    anchored: list[str] = []

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{where}[{n}]") for n, v in enumerate(value)]
        if isinstance(value, str) and value and not os.path.isabs(value) and "://" not in value:
            joined = os.path.join(recorded_cwd, value)
            if os.path.realpath(joined) in read or os.path.abspath(joined) in read:
                anchored.append(f"{where}: {value} -> {joined}")
                return joined
        return value

    return walk(config, ""), anchored


def input_names(manifest: dict[str, Any]) -> set[str]:
    """The file names a manifest records as the run's inputs (checkpoint, data): names,
    which may hold ``${`` (``leak${oc.env:VAR}.ckpt`` from a glob) and stay literal."""
    names = {str((manifest.get("checkpoint") or {}).get("path") or "")}
    data = manifest.get("data")
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            names.add(entry["path"])
    return names - {""}


_INTERPOLATION = re.compile(r"(\\*)\$\{")


def literal(value: Any) -> Any:
    """``value`` with every string escaped for OmegaConf, so that it reads back exactly:
    a manifest holds the resolved config, and nothing in it is ever resolved again."""
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, str):  # n backslashes before ${ -> 2n, then an escaped ${
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    return value


def checked_targets(config: dict[str, Any], names: Collection[str] = ()) -> list[str]:
    """``["model: pkg.Class", ...]``: what re-running ``config`` builds, each target checked.

    A run directory is data, not code: every ``_target_`` of the manifest's config must be
    a class of the kind its place builds (nested ones too), and nothing there may
    interpolate (a manifest holds the resolved config), except the input file ``names``
    it records (:func:`input_names`). Nothing is imported beyond the named classes'
    modules, and nothing is called.
    """
    from litpredict.checkpoint.targets import UnsafeTarget, check_targets, nested_targets

    interpolated = _interpolations(config, "config", set(names))
    if interpolated:
        raise UnsafeTarget(
            f"the manifest's config interpolates ({interpolated[0]}): a manifest holds the "
            "resolved config, so this one was edited; refusing to run it",
            "reproduce a run directory whose manifest.json litpredict wrote",
        )
    built = []
    for key, value in config.items():
        if key in BUILT:
            built += check_targets(value, key, BUILT[key])
            continue
        for path, target in nested_targets(value, key):
            raise UnsafeTarget(
                f"the manifest's config has a _target_ at {path} ({target!r}), where predict "
                "builds nothing; refusing to run it",
                "reproduce a run directory whose manifest.json litpredict wrote",
            )
    missing = sorted(set(BUILT) - set(config))
    if missing:
        raise UnsafeTarget(
            f"the manifest's config has no {', '.join(missing)}",
            "reproduce a run directory whose manifest.json litpredict wrote",
        )
    return built


def _interpolations(value: Any, where: str, names: set[str]) -> list[str]:
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _interpolations(v, f"{where}.{k}", names)]
    if isinstance(value, list):
        return [i for n, v in enumerate(value) for i in _interpolations(v, f"{where}[{n}]", names)]
    if isinstance(value, str) and "${" in value and value not in names:
        return [f"{where}: {value}"]
    return []


def input_changes(manifest: dict[str, Any]) -> list[str]:
    """Inputs whose content differs from what the manifest recorded.

    Remote inputs (a checkpoint or data at a URL) are downloaded again and hashed: a
    changed object is named with its old and new SHA-256 and ETag/version.
    """
    from litpredict.remote.fingerprint import refetched
    from litpredict.remote.urls import is_url
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.same_run import data_changes

    changes = []
    checkpoint = manifest.get("checkpoint") or {}
    if is_url(checkpoint.get("path")):
        return _remote_checkpoint_change(checkpoint) + data_changes(manifest, refetched)
    path = Path(checkpoint.get("path", ""))
    if not path.is_file():
        changes.append(f"checkpoint {path} is gone")
    elif sha256_file(path) != checkpoint.get("sha256"):
        changes.append(f"checkpoint {path} changed (sha256 differs from the manifest's)")
    return changes + data_changes(manifest, refetched)


def _remote_checkpoint_change(checkpoint: dict[str, Any]) -> list[str]:
    """The checkpoint at its URL, fetched again, against the manifest's SHA-256."""
    from litpredict.remote.fingerprint import refetched

    url = checkpoint["path"]
    now = refetched(url)
    if now.get("missing"):
        return [f"checkpoint {url} is gone"]
    if now.get("sha256") == checkpoint.get("sha256"):
        return []
    said = [f"sha256 {str(checkpoint.get('sha256'))[:12]} -> {now['sha256'][:12]}"]
    for key in ("etag", "version"):
        if checkpoint.get(key) != now.get(key):
            said.append(f"{key} {checkpoint.get(key)} -> {now.get(key)}")
    return [f"checkpoint {url} changed ({'; '.join(said)})"]


def compare_outputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before = {o["path"]: o["sha256"] for o in old.get("outputs", [])}
    after = {o["path"]: o["sha256"] for o in new.get("outputs", [])}
    return [
        f"{path}: {'missing' if path not in after else 'differs'}"
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]


def verdict(
    run_dir: Path,
    new_dir: Path,
    changes: list[str],
    manifest: dict[str, Any],
    result: dict[str, Any],
) -> int:
    """Print what changed and what differs between the run and its re-run; the exit code."""
    differences = compare_outputs(manifest, result)
    for line in changes:
        print(f"input changed: {line}")
    for line in differences:
        print(f"output differs: {line}")
    if changes or differences:
        print(f"not reproduced: {run_dir} vs {new_dir}")
        return EXIT_DIFFERENT
    print(f"reproduced: {len(result['outputs'])} outputs byte-identical in {new_dir}")
    return 0
