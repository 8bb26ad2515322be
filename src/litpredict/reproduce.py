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

from litpredict.results.reproduction import checked_targets, input_changes, rewrite, verdict


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

    from litpredict.predict import predict
    from litpredict.process.errors import UserError
    from litpredict.process.job import Job
    from litpredict.process.reporting import run_reporting_errors
    from litpredict.rundir.manifest import COMPLETE, read_manifest

    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != COMPLETE:
        raise UserError(
            f"{str(run_dir)!r} holds no complete run (status: {(manifest or {}).get('status')})",
            "pass the directory of a run whose manifest.json says status: complete",
        )
    if "ensemble" in manifest:  # members combined again: nothing built from the manifest
        from litpredict.results.ensembles import reproduce_ensemble

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
    config = rewrite(manifest["config"], str(old_dir), str(new_dir))
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
    from litpredict.process.errors import UserError

    try:
        return reproduce(args.run_dir.resolve(), new_dir)
    except UserError as error:
        print(f"litpredict: error: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
