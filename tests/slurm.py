"""A one-node SLURM cluster for the scheduler tests, started once per session.

``scripts/slurm-up.sh`` writes its own config (``SLURM_CONF``) and starts munge, slurmctld
and slurmd; ``.ci/run`` installs ``slurm-wlm`` first, so CI (root) runs these tests. Where
the cluster cannot start (not root, no slurm binaries) the tests are skipped with why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAEMONS = ("slurmctld", "slurmd", "munged")


def _missing_binaries() -> list[str]:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin"
    return [
        tool
        for tool in ("sbatch", "srun", "scancel", *DAEMONS)
        if not shutil.which(tool, path=path)
    ]


@pytest.fixture(scope="session", name="slurm_env")
def slurm_env_fixture() -> dict[str, str]:
    """The environment for commands that talk to the test cluster (``SLURM_CONF`` set)."""
    if os.geteuid() != 0:
        pytest.skip("a SLURM cluster needs root here (munge, slurmd); run the tests as root")
    missing = _missing_binaries()
    if missing:
        pytest.skip(f"no SLURM here ({', '.join(missing)} missing): apt-get install slurm-wlm")
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "slurm-up.sh")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/slurm-up.sh failed:\n{result.stdout}\n{result.stderr}")
    return {**os.environ, "SLURM_CONF": result.stdout.strip().splitlines()[-1]}
