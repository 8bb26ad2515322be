"""A finished run directory read back: its manifest, prediction arrays and sample ids.

What ensembles, comparisons and the sweep summary's agreement column read. Only complete
runs whose outputs still have their manifest's hashes are read, and only the ``npy``
writer's files (``predictions.npy``, or ``predictions/<key>.npy`` for a dict output):
arrays come back memory-mapped, so reading a run costs nothing until it is used. Arrays
are numbers only: a ``.npy`` of Python objects is refused, never unpickled.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import UserError, first_line
from litpredict.rundir.manifest import COMPLETE, read_manifest

TENSOR_KEY = "prediction"  # the one key of a single-tensor output (writing.outputs' name)


class RunOutputsError(UserError):
    """A run directory that cannot be combined or compared: not complete, or not npy."""


@dataclass
class RunOutputs:
    run_dir: Path
    manifest: dict[str, Any]
    kind: str  # "tensor" (predictions.npy) or "dict" (predictions/<key>.npy)
    arrays: dict[str, np.ndarray]
    ids: list[str] | None

    @property
    def num_predictions(self) -> int:
        return len(next(iter(self.arrays.values())))

    def shapes(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{key: (shape, dtype)}``: what members of one ensemble must share."""
        return {key: (tuple(a.shape), str(a.dtype)) for key, a in self.arrays.items()}


def regular_file(path: Path, what: str, fix: str) -> Path:
    """``path``, once it is a regular file: a FIFO would block the reader forever, a
    device or a folder is no array. Checked with ``stat``, before anything opens it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise RunOutputsError(f"{what} {path} cannot be read ({error.strerror})", fix) from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else None
        kind = kind or "not a regular file (a device or socket)"
        raise RunOutputsError(f"{what} {path} is {kind}, not a file", fix)
    return path


def numeric_npy(path: Path, what: str, fix: str) -> np.ndarray:
    """The ``.npy`` file at ``path``, memory-mapped: numbers (or bools, strings), never
    Python objects. Its header is read first; ``allow_pickle`` is never true, so nothing
    in the file is ever unpickled."""
    regular_file(path, what, fix)
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            _, _, dtype = read_header(file)
        if dtype.hasobject:
            raise RunOutputsError(
                f"{what} {path} holds Python objects (dtype {dtype}), which only unpickling "
                "could read; litpredict never unpickles a file",
                fix,
            )
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise RunOutputsError(
            f"{what} {path} cannot be read as a .npy array ({first_line(error)})", fix
        ) from None


def read_run(run_dir: str | Path, verify: bool = True) -> RunOutputs:
    """The outputs of the complete run in ``run_dir``; ``verify`` re-checks their hashes."""
    from litpredict.rundir.hashing import sha256_file

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest is None or manifest.get("status") != COMPLETE:
        raise RunOutputsError(
            f"{run_dir} holds no complete run (status: {(manifest or {}).get('status')})",
            "pass run directories whose manifest.json says status: complete",
        )
    recorded = _recorded_outputs(run_dir, manifest)
    paths = sorted(p for p in recorded if p.endswith(".npy"))
    if not paths:
        raise RunOutputsError(
            f"{run_dir} holds no .npy predictions (outputs: {', '.join(map(str, recorded))})",
            "predict with writer=npy (the default) to ensemble or compare runs",
        )
    fix = "predict that run again (its outputs were changed or replaced)"
    for path in [*paths, *(["ids.txt"] if "ids.txt" in recorded else [])]:
        regular_file(run_dir / path, "output", fix)  # before hashing: a FIFO would hang
        if verify and sha256_file(run_dir / path) != recorded[path]:
            raise RunOutputsError(
                f"{run_dir / path} no longer has the sha256 its manifest records",
                "predict that run again (its outputs were changed or truncated)",
            )
    kind = "tensor" if paths == ["predictions.npy"] else "dict"
    arrays = {
        TENSOR_KEY if kind == "tensor" else Path(p).stem: numeric_npy(run_dir / p, "output", fix)
        for p in paths
    }
    for key, array in arrays.items():
        if array.ndim == 0:
            raise RunOutputsError(
                f"output {key!r} of {run_dir} is a single value (0-d), not one row per sample",
                fix,
            )
    ids = None
    if "ids.txt" in recorded:
        try:
            ids = (run_dir / "ids.txt").read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as error:
            problem = f"{run_dir / 'ids.txt'} is not UTF-8 text ({error})"
            raise RunOutputsError(problem, fix) from None
    return RunOutputs(run_dir, manifest, kind, arrays, ids)


def _recorded_outputs(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """``{relative path: sha256}`` of the outputs the manifest lists, each inside ``run_dir``."""
    outputs = manifest.get("outputs") or []
    valid = isinstance(outputs, list) and all(
        isinstance(o, dict) and isinstance(o.get("path"), str) and o["path"] for o in outputs
    )
    if valid:
        inside = [Path(o["path"]) for o in outputs]
        valid = all(not p.is_absolute() and ".." not in p.parts for p in inside)
    if not valid:
        raise RunOutputsError(
            f"{run_dir}/manifest.json lists its outputs in a form litpredict never writes "
            "(each must be a relative path inside the run directory, with its sha256)",
            "predict that run again (its manifest was edited)",
        )
    return {o["path"]: o.get("sha256") for o in outputs}


def member_record(run: RunOutputs) -> dict[str, Any]:
    """What an ensemble's manifest says of one member: where, which checkpoint, which outputs."""
    checkpoint = run.manifest.get("checkpoint") or {}
    return {
        "job_dir": str(run.run_dir.resolve()),
        "checkpoint": {k: checkpoint.get(k) for k in ("path", "sha256", "epoch", "global_step")},
        "outputs": [
            {"path": o["path"], "sha256": o["sha256"]} for o in run.manifest.get("outputs", [])
        ],
    }
