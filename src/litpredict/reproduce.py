"""``python -m litpredict.reproduce RUN_DIR [hydra.run.dir=NEW]``: re-run and compare.

Re-runs a complete run from its manifest (same checkpoint, same data, same resolved
config) into a new run directory, then compares every output's SHA-256. Exit 0 only when
every output is byte-identical and no input changed; a changed checkpoint or data file is
named. It runs in the current directory: relative data paths the run read are joined to
the manifest's recorded ``cwd`` as data; ``--in-recorded-cwd`` (or ``--cwd DIR``) runs
there instead, only when asked: a manifest never decides where a program runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from litpredict.results.reproduction import (
    anchored_data_paths,
    checked_targets,
    input_changes,
    input_names,
    literal,
    rewrite,
    verdict,
)


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


def reproduce(
    run_dir: Path,
    new_dir: Path | None,
    cwd: Path | None = None,
    in_recorded_cwd: bool = False,
) -> int:
    """Re-run ``run_dir`` into ``new_dir`` (default: beside it) and compare the outputs.

    ``cwd`` (or, with ``in_recorded_cwd``, the manifest's ``cwd``) is where the re-run
    runs, asked for by the user; by default it runs here, relative data paths anchored
    to the recorded cwd (:func:`~litpredict.results.reproduction.anchored_data_paths`).
    """
    from omegaconf import OmegaConf

    from litpredict.predict import predict
    from litpredict.process.errors import UserError
    from litpredict.process.job import Job
    from litpredict.process.reporting import run_reporting_errors
    from litpredict.rundir.manifest import COMPLETE, read_manifest
    from litpredict.rundir.ownership import ENSEMBLE, PREDICT, check_output

    manifest = read_manifest(run_dir)
    if not isinstance(manifest, dict) or manifest.get("status") != COMPLETE:
        status = manifest.get("status") if isinstance(manifest, dict) else None
        raise UserError(
            f"{str(run_dir)!r} holds no complete run (status: {status})",
            "pass the directory of a run whose manifest.json says status: complete",
        )
    new_dir = (
        new_dir or run_dir.with_name(f"{run_dir.name}.reproduce-{secrets.token_hex(3)}")
    ).absolute()
    command = ENSEMBLE if "ensemble" in manifest else PREDICT
    check_output(new_dir, command, inputs=[run_dir], option="hydra.run.dir")
    workdir = _working_directory(manifest, cwd, in_recorded_cwd)
    if command == ENSEMBLE:  # members combined again: nothing built from the manifest
        from litpredict.results.ensembles import reproduce_ensemble

        return reproduce_ensemble(run_dir, new_dir)
    if not isinstance(manifest.get("config"), dict):
        raise UserError(
            f"{run_dir}/manifest.json has no config to re-run",
            "reproduce a run directory whose manifest.json litpredict wrote",
        )
    for line in checked_targets(manifest["config"], input_names(manifest)):
        print(f"will build {line}")
    new_dir = new_dir.resolve()
    changes = input_changes(manifest)
    old_dir = (manifest["config"].get("paths") or {}).get("run_dir") or str(run_dir)
    config = rewrite(manifest["config"], str(old_dir), str(new_dir))
    config["ckpt_path"] = manifest["checkpoint"]["path"]  # a URL is fetched again, verified
    if config.get("upload_to"):
        config["upload_to"] = None  # the re-run is compared, not uploaded over the original
    if workdir is not None:
        print(f"working in {workdir} (asked for on the command line)")
        os.chdir(workdir)
    else:  # relative data paths mean what they meant then, read as data
        config, anchored = anchored_data_paths(config, manifest.get("cwd"), manifest.get("data"))
        for line in anchored:
            print(f"relative data path {line} (the recorded cwd's)")
    job = Job(
        run_dir=new_dir,
        overrides=list(manifest.get("overrides", [])),
        log_file=_logging_to(new_dir),
    )
    # a manifest holds the resolved config: every string is a literal, never resolved again
    result = run_reporting_errors(job, lambda: predict(OmegaConf.create(literal(config)), job))
    return verdict(run_dir, new_dir, changes, manifest, result)


def _working_directory(manifest: dict, cwd: Path | None, in_recorded_cwd: bool) -> Path | None:
    """Where the user asked the re-run to run; None: here."""
    from litpredict.process.errors import UserError

    if in_recorded_cwd:
        recorded = manifest.get("cwd")
        if not isinstance(recorded, str) or not os.path.isabs(recorded):
            raise UserError(
                f"the manifest records no working directory (cwd: {recorded!r})",
                "leave out --in-recorded-cwd, or pass --cwd DIR",
            )
        cwd = Path(recorded)
    if cwd is not None and not cwd.is_dir():
        raise UserError(f"--cwd {cwd} is not a directory", "pass --cwd an existing directory")
    return cwd.resolve() if cwd is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litpredict.reproduce", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("run_dir", type=Path, help="a run directory with a complete manifest.json")
    parser.add_argument("overrides", nargs="*", help="hydra.run.dir=NEW: where the re-run goes")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--in-recorded-cwd",
        action="store_true",
        help="run in the working directory the manifest records (default: here, relative "
        "data paths joined to it)",
    )
    where.add_argument("--cwd", type=Path, metavar="DIR", help="run in DIR")
    args = parser.parse_args(argv)
    new_dir = None
    for override in args.overrides:
        key, _, value = override.partition("=")
        if key != "hydra.run.dir" or not value:
            parser.error(f"unsupported override {override!r}: only hydra.run.dir=NEW")
        new_dir = Path(value)
    from litpredict.process.reporting import run_command

    return run_command(
        lambda: reproduce(args.run_dir.resolve(), new_dir, args.cwd, args.in_recorded_cwd)
    )


if __name__ == "__main__":
    sys.exit(main())
