"""Whether a run directory holds this very run: the check behind ``complete`` and resuming.

A run is the checkpoint's SHA-256, the resolved config (less the keys that do not change
what it writes, and the paths naming its own directory) and the input data's fingerprint.
:func:`differences` names what differs; empty means the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litpredict.rundir.provenance import RemoteEntry

# Resolved config keys that do not change what a run writes: a terminal or not, where
# runs go by default (an explicit hydra.run.dir does not depend on it).
# ``upload_to``: where the outputs are copied once complete, not what they are; ``resume.*``:
# how often a run commits what it wrote.
IGNORED_KEYS = {"trainer.enable_progress_bar", "paths.root", "upload_to"}
IGNORED_PREFIXES = ("resume.",)
RUN_DIR_MARK = "<run_dir>"


def comparable_config(
    config: dict[str, Any], run_dir: str, ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``config`` flattened to ``{dotted key: value}``, the run directory as a mark, less
    :data:`IGNORED_KEYS` and ``ignored``."""
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(value, str) and run_dir and value.startswith(run_dir):
            flat[key] = RUN_DIR_MARK + value[len(run_dir) :]
        else:
            flat[key] = value

    walk(config, "")
    skip = IGNORED_KEYS | set(ignored)
    return {k: v for k, v in flat.items() if k not in skip and not k.startswith(IGNORED_PREFIXES)}


def config_changes(
    before: dict[str, Any], after: dict[str, Any], after_dir: Path, ignored: tuple[str, ...] = ()
) -> list[str]:
    """The resolved-config keys whose values differ between a manifest and this run."""
    old_dir = str(((before.get("paths") or {}).get("run_dir")) or "")
    old = comparable_config(before, old_dir, ignored)
    new = comparable_config(after, str(after_dir), ignored)
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


def data_changes(manifest: dict[str, Any], remote: RemoteEntry | None = None) -> list[str]:
    """The input files whose fingerprint differs from the one the manifest recorded.

    A URL is checked through ``remote`` (litpredict.remote.fingerprint), else skipped.
    """
    from litpredict.rundir.provenance import algorithm_of, content_of, data_fingerprint, is_url

    changes = []
    for before in manifest.get("data") or []:
        if is_url(before["path"]):
            if remote is None:
                continue
            after = remote(before["path"], algorithm_of(before))
            if after.get("missing"):
                changes.append(f"data {before['path']} is gone")
            elif content_of(before) != content_of(after):
                changes.append(f"data {before['path']} changed ({_tags(before, after)})")
            continue
        path = Path(before["path"])
        if not path.exists():
            changes.append(f"data {path} is gone")
            continue
        [after] = data_fingerprint([path], algorithm_of(before))
        if content_of(before) != content_of(after):
            changes.append(f"data {path} changed")
    return changes


def _tags(before: dict[str, Any], after: dict[str, Any]) -> str:
    """How a remote object changed: its SHA-256, and its ETag/version where the store says."""
    said = [f"sha256 {before.get('sha256', '?')[:12]} -> {after.get('sha256', '?')[:12]}"]
    for key in ("etag", "version"):
        if before.get(key) != after.get(key):
            said.append(f"{key} {before.get(key)} -> {after.get(key)}")
    return "; ".join(said)


def differences(
    manifest: dict[str, Any],
    config: dict[str, Any],
    run_dir: Path,
    checkpoint_sha256: str,
    remote: RemoteEntry | None = None,
    ignored: tuple[str, ...] = (),
) -> list[str]:
    """Why the run in ``manifest`` is not this run (empty: it is this run); config keys in
    ``ignored`` may differ (a resumed run may have another number of ranks)."""
    changes = []
    if (manifest.get("checkpoint") or {}).get("sha256") != checkpoint_sha256:
        changes.append("another checkpoint")
    changed = config_changes(manifest.get("config") or {}, config, run_dir, ignored)
    if changed:
        changes.append("another config (" + "; ".join(changed[:3]))
        changes[-1] += f"; +{len(changed) - 3} more)" if len(changed) > 3 else ")"
    return changes + data_changes(manifest, remote)
