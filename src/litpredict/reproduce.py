"""``python -m litpredict.reproduce RUN_DIR [hydra.run.dir=NEW]``: re-run and compare.

Re-runs a complete run from its manifest (same checkpoint, same data, same resolved
config, same working directory) into a new run directory, then compares every output's
SHA-256. Exit 0 only when every output is byte-identical and no input changed; a
changed checkpoint or data file is named.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

EXIT_DIFFERENT = 1
# What predict builds from a config, and the kind each must be (litpredict.targets.KINDS).
BUILT = {
    "model": "LightningModule",
    "datamodule": "LightningDataModule",
    "trainer": "Trainer",
    "writer": "PredictionWriter",
}


def _rewrite(value: Any, old: str, new: str) -> Any:
    """Replace the old run directory in every resolved string of the config."""
    if isinstance(value, dict):
        return {k: _rewrite(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old) :]
    return value


def checked_targets(config: dict[str, Any]) -> list[str]:
    """``["model: pkg.Class", ...]``: what re-running ``config`` builds, each target checked.

    A run directory is data, not code: every ``_target_`` of the manifest's config must be
    a class of the kind its place builds (nested ones too), and nothing there may
    interpolate (a manifest holds the resolved config). Nothing is imported beyond the
    named classes' modules, and nothing is called.
    """
    from litpredict.targets import UnsafeTarget, check_targets, nested_targets

    interpolated = _interpolations(config, "config")
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


def _interpolations(value: Any, where: str) -> list[str]:
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _interpolations(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [i for n, v in enumerate(value) for i in _interpolations(v, f"{where}[{n}]")]
    return [f"{where}: {value}"] if isinstance(value, str) and "${" in value else []


def input_changes(manifest: dict[str, Any]) -> list[str]:
    """Inputs whose content differs from what the manifest recorded."""
    from litpredict.hashing import sha256_file
    from litpredict.run_dir import data_changes

    changes = []
    checkpoint = manifest.get("checkpoint") or {}
    path = Path(checkpoint.get("path", ""))
    if not path.is_file():
        changes.append(f"checkpoint {path} is gone")
    elif sha256_file(path) != checkpoint.get("sha256"):
        changes.append(f"checkpoint {path} changed (sha256 differs from the manifest's)")
    return changes + data_changes(manifest)


def compare_outputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before = {o["path"]: o["sha256"] for o in old.get("outputs", [])}
    after = {o["path"]: o["sha256"] for o in new.get("outputs", [])}
    return [
        f"{path}: {'missing' if path not in after else 'differs'}"
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]


def _logging_to(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / "predict.log"
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    file = logging.FileHandler(log_file)
    file.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO)
    root.addHandler(file)
    root.addHandler(console)
    logging.getLogger("litpredict").setLevel(logging.DEBUG)
    return log_file


def reproduce(run_dir: Path, new_dir: Path | None) -> int:
    from omegaconf import OmegaConf

    from litpredict.errors import UserError
    from litpredict.job import Job
    from litpredict.manifest import COMPLETE, read_manifest
    from litpredict.predict import predict
    from litpredict.reporting import run_reporting_errors

    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != COMPLETE:
        raise UserError(
            f"{str(run_dir)!r} holds no complete run (status: {(manifest or {}).get('status')})",
            "pass the directory of a run whose manifest.json says status: complete",
        )
    if "ensemble" in manifest:  # members combined again: nothing built from the manifest
        from litpredict.ensemble import reproduce_ensemble

        return reproduce_ensemble(run_dir, new_dir)
    if not isinstance(manifest.get("config"), dict):
        raise UserError(
            f"{run_dir}/manifest.json has no config to re-run",
            "reproduce a run directory whose manifest.json litpredict wrote",
        )
    for line in checked_targets(manifest["config"]):
        print(f"will build {line}")
    new_dir = (
        new_dir or run_dir.with_name(f"{run_dir.name}.reproduce-{secrets.token_hex(3)}")
    ).resolve()
    changes = input_changes(manifest)
    old_dir = (manifest["config"].get("paths") or {}).get("run_dir") or str(run_dir)
    config = _rewrite(manifest["config"], str(old_dir), str(new_dir))
    config["ckpt_path"] = manifest["checkpoint"]["path"]
    if manifest.get("cwd"):
        os.chdir(manifest["cwd"])  # relative data paths mean what they meant then
    job = Job(
        run_dir=new_dir,
        overrides=list(manifest.get("overrides", [])),
        log_file=_logging_to(new_dir),
    )
    result = run_reporting_errors(job, lambda: predict(OmegaConf.create(config), job))
    return verdict(run_dir, new_dir, changes, manifest, result)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litpredict.reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="a run directory with a complete manifest.json")
    parser.add_argument("overrides", nargs="*", help="hydra.run.dir=NEW: where the re-run goes")
    args = parser.parse_args(argv)
    new_dir = None
    for override in args.overrides:
        key, _, value = override.partition("=")
        if key != "hydra.run.dir" or not value:
            parser.error(f"unsupported override {override!r}: only hydra.run.dir=NEW")
        new_dir = Path(value)
    from litpredict.errors import UserError

    try:
        return reproduce(args.run_dir.resolve(), new_dir)
    except UserError as error:
        print(f"litpredict: error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
