"""Where ``conf/`` is: the repository's top folder in a checkout, package data in a wheel."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    checkout = Path(__file__).resolve().parents[2] / "conf"
    if (checkout / "predict.yaml").is_file():
        return str(checkout)
    from importlib.resources import files

    return str(files("litpredict.conf"))
