"""A stopped attempt's shard, cut back to what it committed and what still checks out.

A rank killed in the middle of its run leaves a shard without ``meta.json``: rows after
its last commit, maybe a commit line cut short, maybe (a torn write, a bad disk) bytes
that differ from what was committed. :func:`seal` keeps the longest run of commits,
from the first, whose every segment still has its checksum; truncates each file to that
commit; and writes the ``meta.json`` a closed shard has, so the merge reads the shard
like any other. A shard with no good commit is removed: its samples are predicted again.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from litpredict.rundir.files import atomic_write, write_json
from litpredict.writing.shard_layout import COMMITS, INDEX, LAYOUT, META, segment_checksum

log = logging.getLogger(__name__)


def read_commits(directory: Path) -> list[dict[str, Any]]:
    """The commit lines of a shard, up to the first that is not whole (a torn last line)."""
    path = directory / COMMITS
    if not path.is_file():
        return []
    commits = []
    for line in path.read_bytes().split(b"\n"):
        try:
            commit = json.loads(line)
        except ValueError:
            break  # cut short by the kill: nothing after it was committed
        if not _well_formed(commit):
            break
        commits.append(commit)
    return commits


def _well_formed(commit: Any) -> bool:
    if not isinstance(commit, dict) or not isinstance(commit.get("files"), dict):
        return False
    if not isinstance(commit.get("rows"), int) or not isinstance(commit.get("sequential"), bool):
        return False
    return all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], str)
        for v in commit["files"].values()
    )


def _checks_out(directory: Path, commit: dict[str, Any], before: dict[str, int]) -> str | None:
    """Why ``commit``'s segments do not match the files (None: they do)."""
    for key, (end, checksum) in commit["files"].items():
        path = directory / f"{key}.bin"
        if not path.is_file() or path.stat().st_size < end:
            return f"{path.name} is shorter than committed"
        if segment_checksum(path, before.get(key, 0), end) != checksum:
            return f"{path.name} does not match its checksum"
    return None


def good_commit(directory: Path) -> tuple[dict[str, Any] | None, int, str | None]:
    """``(last good commit or None, how many commits were good, why the next was not)``."""
    before: dict[str, int] = {}
    good = None
    commits = read_commits(directory)
    for number, commit in enumerate(commits):
        why = _checks_out(directory, commit, before)
        if why is not None:
            return good, number, why
        good = commit
        before = {key: end for key, (end, _) in commit["files"].items()}
    return good, len(commits), None


def seal(directory: Path) -> int:
    """Cut the shard in ``directory`` back to its last good commit; the rows it keeps.

    0: nothing was committed or nothing checks out, and the folder is removed.
    """
    layout_path = directory / LAYOUT
    try:
        layout = json.loads(layout_path.read_text())
    except (OSError, ValueError):
        layout = None
    good, kept, why = good_commit(directory) if layout is not None else (None, 0, None)
    if why is not None:
        log.warning(
            "%s: commit %d and after are not used (%s); their samples are predicted again",
            directory,
            kept + 1,
            why,
        )
    if good is None:
        shutil.rmtree(directory, ignore_errors=True)
        return 0
    ends = {key: end for key, (end, _) in good["files"].items()}
    for key in [*layout["layout"], INDEX]:
        path = directory / f"{key}.bin"
        if key in ends:
            os.truncate(path, ends[key])
        else:  # index.bin begun after the last good commit
            path.unlink(missing_ok=True)
    commits = read_commits(directory)[:kept]
    atomic_write(directory / COMMITS, "".join(json.dumps(c) + "\n" for c in commits))
    try:  # a shard closed whole keeps the hashes it computed while writing
        closed = json.loads((directory / META).read_text())
        hashes = closed["sha256"] if closed.get("rows") == good["rows"] else {}
    except (OSError, ValueError, KeyError, TypeError):
        hashes = {}
    meta = {
        "rows": good["rows"],
        "kind": good.get("kind"),
        "layout": layout["layout"],
        "sequential": good["sequential"],
        "header_rows": layout["header_rows"],
        "header_bytes": layout["header_bytes"],
        "sha256": hashes,  # else hashed again if it becomes a final file as it is
    }
    write_json(directory / META, meta)
    return good["rows"]
