"""Where ``conf/`` is, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    # src/litpredict/conf is a symlink to the repository's conf/ in a checkout and a real
    # folder in a wheel; resolving it names the folder users edit.
    return str((Path(__file__).parents[1] / "conf").resolve())
