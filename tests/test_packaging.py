"""The wheel carries conf/, and an installed wheel composes its configs from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_finds_its_config_tree(tmp_path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("litpredict-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for config in (
        "predict.yaml",
        "train.yaml",
        "model/cnn.yaml",
        "hydra/default.yaml",
        "experiment/sequence.yaml",
    ):
        assert f"litpredict/conf/{config}" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import litpredict, litpredict.process.config_dir as c;"
        "print(litpredict.__file__); print(c.config_dir())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(site)) and out[1].startswith(str(site))
    job = subprocess.run(
        [sys.executable, "-m", "litpredict.predict", "experiment=sequence", "--cfg", "job"],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "litpredict.models.LSTMSequence" in job
