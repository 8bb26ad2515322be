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


def _rewrite(value: Any, old: str, new: str) -> Any:
    """Replace the old run directory in every resolved string of the config."""
    if isinstance(value, dict):
        return {k: _rewrite(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old) :]
    return value


def input_changes(manifest: dict[str, Any]) -> list[str]:
    """Inputs whose content differs from what the manifest recorded."""
    from litpredict.hashing import sha256_file
    from litpredict.provenance import algorithm_of, content_of, data_fingerprint

    changes = []
    checkpoint = manifest.get("checkpoint") or {}
    path = Path(checkpoint.get("path", ""))
    if not path.is_file():
        changes.append(f"checkpoint {path} is gone")
    elif sha256_file(path) != checkpoint.get("sha256"):
        changes.append(f"checkpoint {path} changed (sha256 differs from the manifest's)")
    for before in manifest.get("data") or []:
        [after] = data_fingerprint([Path(before["path"])], algorithm_of(before))
        if content_of(before) != content_of(after):
            changes.append(f"data {before['path']} changed")
    return changes


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
    new_dir = (
        new_dir or run_dir.with_name(f"{run_dir.name}.reproduce-{secrets.token_hex(3)}")
    ).resolve()
    changes = input_changes(manifest)
    config = _rewrite(manifest["config"], str(manifest["config"]["paths"]["run_dir"]), str(new_dir))
    config["ckpt_path"] = manifest["checkpoint"]["path"]
    if manifest.get("cwd"):
        os.chdir(manifest["cwd"])  # relative data paths mean what they meant then
    job = Job(
        run_dir=new_dir,
        overrides=list(manifest.get("overrides", [])),
        log_file=_logging_to(new_dir),
    )
    result = run_reporting_errors(job, lambda: predict(OmegaConf.create(config), job))
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
