"""Whether a command may write where it is told to, and holding a directory while it does.

- :func:`check_output`: the one ownership rule of every command that writes (predict,
  train, ensemble, compare, average): a folder only when it is new, empty or a run of the
  same command (its manifest says so), a single file never over an existing one unless
  asked (``--force``), and never over or around one of the command's own inputs.
- :func:`foreign_files`: files no litpredict manifest lists (a user's own folder passed as
  ``hydra.run.dir`` or ``--out``) make the directory unusable; litpredict never writes over
  them. Leftover names (``.shards/``, ``.staging/``, ``.*.tmp``) are litpredict's only
  beside a litpredict manifest.
- :func:`owned_output`: ``check_output``, then the directory locked
  (:class:`~litpredict.rundir.lock.RunLock`) and checked again.
- :func:`clear_leftovers`: a failed run's staging files, and its shards unless the next
  run reuses them (``litpredict.writing.resume``), removed at the start of the next run so
  that, once there is space again, the same command completes; only in a folder a
  litpredict manifest owns. :func:`clear_attempt` also removes the outputs of a failed or
  interrupted attempt that the same command redoes from the start.
- :func:`remember_hydra_files` / :func:`restore_hydra_files`: Hydra rewrites ``.hydra/``
  before any job callback or task runs; a run that does nothing puts it back as it was.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from litpredict.process.errors import RunDirError
from litpredict.rundir.lock import LOCK, RunLock
from litpredict.rundir.manifest import (
    COMPLETE,
    FAILED,
    FILENAME,
    INTERRUPTED,
    RUNNING,
    read_manifest,
)

HYDRA = ".hydra"
SHARDS = ".shards"  # litpredict.writing.shard_layout.SHARDS (not imported: it pulls in numpy)
STAGING = ".staging"  # litpredict.writing.finalize.STAGING
JOB_ERROR = "job_error.json"  # litpredict.sweep.summary.JOB_ERROR
WRITE_PROBE = ".litpredict-write-test-*.tmp"  # process.hydra_callbacks: made and removed
# Litpredict's working folders: its own only beside a litpredict manifest.
LEFTOVER_DIRS = (SHARDS, STAGING)

# The commands that write, as a manifest's ``kind`` names them (a manifest without one is
# predict's, or ensemble's when it has an ``ensemble`` entry: written before the field).
PREDICT, TRAIN, ENSEMBLE, COMPARE, AVERAGE = "predict", "train", "ensemble", "compare", "average"
STATUSES = (RUNNING, COMPLETE, FAILED, INTERRUPTED)
# What each command writes into its folder under names of its own (fnmatch patterns of
# relative paths): a run's own files even before its manifest lists them (a killed run).
OUTPUT_PATTERNS = {
    PREDICT: ("predictions*", "ids.txt"),
    ENSEMBLE: ("predictions*", "ids.txt"),
    COMPARE: ("compare.json", "changed.csv", "compare.png"),
    TRAIN: ("config.json", "checkpoints/*.ckpt", "logs/*"),
}
SINGLE_FILE = {AVERAGE}  # commands whose output is one file, not a folder


def command_of(manifest: Any) -> str | None:
    """The command whose run a manifest records (its ``kind``); None for anything litpredict
    did not write (another tool's ``manifest.json``, a list, an unknown status or kind)."""
    if not isinstance(manifest, dict) or manifest.get("status") not in STATUSES:
        return None
    kind = manifest.get("kind")
    if kind is not None:
        return kind if kind in OUTPUT_PATTERNS else None
    return ENSEMBLE if "ensemble" in manifest else PREDICT


def _is_own(relative: Path, listed: set[str], owner: str | None) -> bool:
    """Whether ``relative`` is Hydra's or litpredict's: Hydra's ``.hydra/`` and logs, the
    lock, a sweep job's error record and the write probe always; the rest only beside a
    manifest of ``owner`` (its manifest, listed outputs, output names and leftovers)."""
    name, top, single = relative.as_posix(), relative.parts[0], len(relative.parts) == 1
    if top == HYDRA:
        return True
    if single and (
        top in (LOCK, JOB_ERROR) or top.endswith(".log") or fnmatch.fnmatchcase(top, WRITE_PROBE)
    ):
        return True
    if owner is None:
        return False
    if top in LEFTOVER_DIRS or name in listed or (single and top == FILENAME):
        return True
    if single and top.startswith(".") and top.endswith(".tmp"):  # atomic writes
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in OUTPUT_PATTERNS[owner])


def foreign_files(run_dir: Path, limit: int = 3) -> list[str]:
    """Up to ``limit`` files in ``run_dir`` that are neither Hydra's, litpredict's own,
    nor outputs its manifest lists (relative paths)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    manifest = read_manifest(run_dir)
    owner = command_of(manifest)
    listed = {str(o.get("path")) for o in _outputs(manifest)} if owner else set()
    skipped = {HYDRA, *LEFTOVER_DIRS} if owner else {HYDRA}
    found = []
    for folder, dirs, files in os.walk(run_dir):
        base = Path(folder).relative_to(run_dir)
        if base == Path("."):
            dirs[:] = sorted(d for d in dirs if d not in skipped)
        for name in sorted(files):
            relative = base / name if base != Path(".") else Path(name)
            if not _is_own(relative, listed, owner):
                found.append(str(relative))
                if len(found) >= limit:
                    return found
    return found


def _outputs(manifest: Any) -> list[dict[str, Any]]:
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    return [o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []


def refuse_foreign(run_dir: Path, option: str = "hydra.run.dir") -> None:
    """Stop before a run writes into a folder holding files that are not litpredict's."""
    found = foreign_files(run_dir)
    if found:
        raise RunDirError(
            f"{run_dir} holds files that no litpredict manifest lists ({', '.join(found)}"
            f"{', ...' if len(found) == 3 else ''}); litpredict never writes over them",
            f"pass {option}=NEW (a new or empty directory, or a litpredict run directory)"
            if option.startswith("hydra.")
            else f"pass {option} NEW_DIR (a new or empty folder)",
        )


def check_output(
    out: Path,
    command: str,
    inputs: Sequence[str | Path] = (),
    force: bool = False,
    option: str = "--out",
) -> dict[str, Any] | None:
    """The ownership rule of every command that writes; raises :class:`RunDirError` (before
    anything is written) where ``command`` may not write ``out``.

    - never one of the command's ``inputs``, a folder holding one, or a path inside one
      (real paths: a symlink or ``..`` spelling changes nothing), ``force`` or not;
    - a single file (:data:`SINGLE_FILE` commands) never replaces a directory, nor an
      existing file unless ``force``;
    - a folder only when it is new or empty, or holds a run of ``command`` and nothing
      that is not litpredict's (:func:`foreign_files`): never another command's run, a
      file, or a folder with a user's files.

    Returns the manifest of the earlier run of ``command`` there (to redo or to report),
    else None.
    """
    out = Path(out).absolute()
    _refuse_inputs(out, inputs, command, option)
    if command in SINGLE_FILE:
        if out.is_dir():
            raise RunDirError(
                f"{out} is a directory; {command} writes one file and never replaces a folder",
                f"pass {option} a file path, e.g. {out / 'averaged.ckpt'}",
            )
        if (out.exists() or out.is_symlink()) and not force:
            raise RunDirError(
                f"{out} exists; {command} never replaces a file unless asked",
                f"pass {option} a new path, or --force to replace that file",
            )
        return None
    if out.exists() and not out.is_dir():
        raise RunDirError(
            f"{out} is a file, not a folder; {command} writes a folder there",
            f"pass {option} a new folder",
        )
    manifest = read_manifest(out)
    owner = command_of(manifest)
    if owner is not None and owner != command:
        raise RunDirError(
            f"{out} holds {_a(owner)} run; {command} writes only into a new folder or "
            f"{_a(command)} run of its own",
            f"pass {option}{'=' if option.startswith('hydra.') else ' '}NEW",
        )
    refuse_foreign(out, option)
    return manifest if owner == command else None


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _refuse_inputs(out: Path, inputs: Sequence[str | Path], command: str, option: str) -> None:
    real = Path(os.path.realpath(out))
    for given in inputs:
        source = Path(os.path.realpath(given))
        if real == source or _same_file_path(out, Path(given)):
            where = "is"
        elif source.is_relative_to(real):
            where = "holds"
        elif real.is_relative_to(source) and source.is_dir():
            where = "is inside"
        else:
            continue
        raise RunDirError(
            f"{option} {out} {where} {given}, an input of this {command}; a command never "
            "writes over its own inputs (not even with --force)",
            f"pass {option} a path outside its inputs",
        )


def _same_file_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_complete(manifest: dict[str, Any] | None, out: Path, option: str = "--out") -> None:
    """A complete run is never overwritten: the same command into it is an error."""
    if manifest is not None and manifest.get("status") == COMPLETE:
        command = command_of(manifest)
        finished = manifest.get("finished_at")
        raise RunDirError(
            f"{out} already holds a complete {command} run"
            f"{f' (finished {finished})' if finished else ''}; a complete run is never "
            "overwritten",
            f"pass {option}{'=' if option.startswith('hydra.') else ' '}NEW (or delete that "
            "directory to redo it)",
        )


@contextlib.contextmanager
def owned_output(
    out: Path, command: str, inputs: Sequence[str | Path] = ()
) -> Iterator[dict[str, Any] | None]:
    """``out`` checked (:func:`check_output`), then locked (:class:`RunLock`) and checked
    again for the block, which gets the earlier run's manifest (None: a new folder)."""
    out = Path(out).absolute()
    check_output(out, command, inputs)  # before the lock creates anything there
    lock = RunLock.acquire(out)
    try:
        yield check_output(out, command, inputs)
    finally:
        lock.release()


def clear_leftovers(run_dir: Path, keep_shards: bool = False) -> None:
    """Remove a failed or interrupted run's shards (unless ``keep_shards``: a resumed run
    reuses them), staging folder and temporary files: only where a litpredict manifest owns
    the folder (a folder that never held a run keeps its ``.staging/``, ``.shards/`` and
    ``.*.tmp``)."""
    run_dir = Path(run_dir)
    if command_of(read_manifest(run_dir)) is None:
        return
    for name in (STAGING,) if keep_shards else LEFTOVER_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for temporary in run_dir.glob(".*.tmp"):
        temporary.unlink(missing_ok=True)


def clear_attempt(run_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Before the same command redoes a failed or interrupted run from the start: remove
    its leftovers and the outputs that attempt wrote (those its manifest lists and those
    of its command's output names); the relative paths removed. A complete run is never
    cleared."""
    run_dir = Path(run_dir)
    command = command_of(manifest)
    if command is None or manifest.get("status") == COMPLETE:
        return []
    clear_leftovers(run_dir)
    listed = {str(o.get("path")) for o in _outputs(manifest)}
    removed = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        name = relative.as_posix()
        if relative.parts[0] == HYDRA or not (path.is_file() or path.is_symlink()):
            continue
        patterns = OUTPUT_PATTERNS[command]
        if name in listed or any(fnmatch.fnmatchcase(name, p) for p in patterns):
            path.unlink()
            removed.append(name)
    return removed


def written_files(run_dir: Path) -> list[dict[str, Any]]:
    """``[{path, bytes}]``: the files a run wrote into ``run_dir`` (its folder was new,
    empty or its own when it started), less Hydra's, the manifest, lock, logs, leftovers."""
    run_dir = Path(run_dir)
    found = []
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        top, single = relative.parts[0], len(relative.parts) == 1
        if top in (HYDRA, *LEFTOVER_DIRS) or not path.is_file():
            continue
        if single and (
            top in (FILENAME, LOCK, JOB_ERROR) or top.endswith(".log") or top.endswith(".tmp")
        ):
            continue
        found.append({"path": relative.as_posix(), "bytes": path.stat().st_size})
    return found


_remembered: dict[Path, dict[str, bytes] | None] = {}


def remember_hydra_files(run_dir: Path) -> None:
    """Keep ``run_dir/.hydra``'s files (None: there was none) before Hydra rewrites them."""
    folder = Path(run_dir).absolute() / HYDRA
    files = {p.name: p.read_bytes() for p in folder.glob("*") if p.is_file()}
    _remembered[folder] = files if folder.is_dir() else None


def restore_hydra_files(run_dir: Path) -> None:
    """Put ``.hydra/`` back as :func:`remember_hydra_files` found it (for a run that did
    nothing); a no-op for a directory not remembered (in-process runs, sweep jobs)."""
    folder = Path(run_dir).absolute() / HYDRA
    if folder not in _remembered:
        return
    files = _remembered.pop(folder)
    if files is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    from litpredict.rundir.files import atomic_write

    for stale in folder.glob("*"):
        if stale.is_file() and stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        atomic_write(folder / name, data)
