"""Where ``conf/`` is: the repository's top folder in a checkout, package data in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def config_dir() -> str:
    checkout = _PACKAGE.parents[1] / "conf"  # src/litpredict -> repository top
    if (checkout / "predict.yaml").is_file():
        return str(checkout)
    return str(_PACKAGE / "conf")  # installed wheel: conf/ ships as litpredict/conf
