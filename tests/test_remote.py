"""Checkpoints, data and outputs at URLs, against real servers on 127.0.0.1.

An S3-compatible server (moto's standalone ``moto_server``) reached by s3fs through
``AWS_ENDPOINT_URL``, and ``python -m http.server`` for http: both started once per test
session as subprocesses on free loopback ports, stopped at its end. Their request logs
count the downloads (a GET of an object is one line).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from conftest import REPO, plain_lightning_checkpoint, predict_in_process, read_manifest, run_cli

pytest.importorskip("s3fs", reason="pip install -e '.[dev]' (s3fs, moto[server])")
pytest.importorskip("moto.server", reason="pip install -e '.[dev]' (s3fs, moto[server])")

KEY_ID, SECRET = "testing-key-id", "litpredict-test-secret-4f1c"
START_TIMEOUT_S = 60
REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.\d"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A server subprocess, its base URL and its request log."""

    process: subprocess.Popen
    url: str
    log: Path

    def requests(self, method: str, path: str) -> int:
        """How many ``method`` requests for ``path`` (``/bucket/key``, no query) it served."""
        count = 0
        for line in self.log.read_text(errors="replace").splitlines():
            found = REQUEST.search(line)
            if found and found.group(1) == method:
                target, _, query = found.group(2).partition("?")
                count += unquote(target) == path and "list-type" not in query
        return count

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start(command: list[str], log: Path, port: int, cwd: Path | None = None) -> Server:
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:3]} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2):
                return Server(process, url, log)
        except urllib.error.HTTPError:
            return Server(process, url, log)  # up, answering (404 for /)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command[:3]} did not answer on {url} in {START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3-compatible server on a free 127.0.0.1 port, for the whole session."""
    folder = tmp_path_factory.mktemp("moto")
    port = free_port()
    command = [sys.executable, "-c", "from moto.server import main; main()"]
    server = start([*command, "-H", "127.0.0.1", "-p", str(port)], folder / "moto.log", port)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    """``python -m http.server`` on 127.0.0.1 serving ``<root>``: (server, root)."""
    root = tmp_path_factory.mktemp("www")
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    server = start(command, root.parent / f"{root.name}.log", port, cwd=root)
    yield server, root
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """AWS_* pointing at the test server, a cache of this test's own; the test's bucket.

    Returns ``(bucket, fs, env)``: an s3fs filesystem of its own (explicit credentials,
    not the environment's) and the variables a subprocess needs.
    """
    import s3fs

    env = {
        "AWS_ENDPOINT_URL": s3_server.url,
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "LITPREDICT_CACHE": str(tmp_path / "cache"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    fs = s3fs.S3FileSystem(
        key=KEY_ID,
        secret=SECRET,
        endpoint_url=s3_server.url,
        skip_instance_cache=True,
    )
    bucket = re.sub(r"[^a-z0-9-]", "-", tmp_path.name.lower())[:50].strip("-") + "-b"
    fs.mkdir(bucket)
    return bucket, fs, env


@pytest.fixture(scope="session")
def linear_run(tmp_path_factory) -> Path:
    """``litpredict.train`` for 2 epochs: checkpoints/epoch=0-step=64.ckpt,
    epoch=1-step=128.ckpt and last.ckpt, with .hydra/config.yaml beside them."""
    root = tmp_path_factory.mktemp("train")
    run_cli(
        "train",
        "experiment=linear_regression",
        "trainer.max_epochs=2",
        f"hydra.run.dir={root / 'run'}",
        cwd=root,
    )
    return root / "run"


def first_ckpt(linear_run: Path) -> Path:
    return linear_run / "checkpoints" / "epoch=0-step=64.ckpt"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_checkpoint_from_s3_predicts_the_local_bytes_and_is_fetched_once(
    s3, s3_server, linear_run, tmp_path
) -> None:
    bucket, fs, _ = s3
    local = first_ckpt(linear_run)
    key = f"{bucket}/run/checkpoints/{local.name}"
    fs.put_file(str(local), key)
    url = f"s3://{key}"

    predict_in_process(
        tmp_path, f"ckpt_path={local}", "model=linear", f"hydra.run.dir={tmp_path}/a"
    )
    manifest = predict_in_process(
        tmp_path, f"ckpt_path={url}", "model=linear", f"hydra.run.dir={tmp_path}/b"
    )
    same = (tmp_path / "a" / "predictions.npy").read_bytes()
    assert (tmp_path / "b" / "predictions.npy").read_bytes() == same
    checkpoint = manifest["checkpoint"]
    assert checkpoint["path"] == url  # the URL as typed, not the cache's copy
    assert checkpoint["sha256"] == sha256(local)
    assert checkpoint["etag"] == fs.info(key)["ETag"].strip('"')
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 64)
    assert s3_server.requests("GET", f"/{key}") == 1
    cached = tmp_path / "cache" / "objects" / sha256(local)[:2] / f"{sha256(local)}.ckpt"
    assert cached.read_bytes() == local.read_bytes()

    predict_in_process(tmp_path, f"ckpt_path={url}", "model=linear", f"hydra.run.dir={tmp_path}/c")
    assert s3_server.requests("GET", f"/{key}") == 1  # unchanged ETag: from the cache
    assert (tmp_path / "c" / "predictions.npy").read_bytes() == same

    fs.put_file(str(linear_run / "checkpoints" / "last.ckpt"), key)  # a new object there
    manifest = predict_in_process(
        tmp_path, f"ckpt_path={url}", "model=linear", f"hydra.run.dir={tmp_path}/d"
    )
    assert s3_server.requests("GET", f"/{key}") == 2
    assert manifest["checkpoint"]["sha256"] == sha256(linear_run / "checkpoints" / "last.ckpt")


def test_the_training_run_config_is_found_beside_a_remote_checkpoint(
    s3, linear_run, tmp_path
) -> None:
    """No model chosen: the model comes from ``<run>/.hydra/config.yaml`` beside the object."""
    bucket, fs, _ = s3
    fs.put_file(
        str(first_ckpt(linear_run)), f"{bucket}/run/checkpoints/{first_ckpt(linear_run).name}"
    )
    fs.put_file(str(linear_run / ".hydra" / "config.yaml"), f"{bucket}/run/.hydra/config.yaml")
    manifest = predict_in_process(
        tmp_path, f"ckpt_path=s3://{bucket}/run/checkpoints/{first_ckpt(linear_run).name}"
    )
    assert manifest["status"] == "complete"
    assert manifest["config"]["training_run"]["path"] == f"s3://{bucket}/run/.hydra/config.yaml"


def test_a_checkpoint_over_http_predicts_the_local_bytes(
    http_server, s3, linear_run, tmp_path
) -> None:
    server, root = http_server
    local = first_ckpt(linear_run)
    folder = root / tmp_path.name
    folder.mkdir()
    shutil.copy(local, folder / local.name)
    url = f"{server.url}/{tmp_path.name}/{local.name}"

    predict_in_process(
        tmp_path, f"ckpt_path={local}", "model=linear", f"hydra.run.dir={tmp_path}/a"
    )
    manifest = predict_in_process(
        tmp_path, f"ckpt_path={url}", "model=linear", f"hydra.run.dir={tmp_path}/b"
    )
    assert (tmp_path / "b" / "predictions.npy").read_bytes() == (
        tmp_path / "a" / "predictions.npy"
    ).read_bytes()
    assert manifest["checkpoint"]["path"] == url
    assert manifest["checkpoint"]["sha256"] == sha256(local)
    assert manifest["checkpoint"]["version"]  # http.server's Last-Modified (no ETag)
    predict_in_process(tmp_path, f"ckpt_path={url}", "model=linear", f"hydra.run.dir={tmp_path}/c")
    assert server.requests("GET", f"/{tmp_path.name}/{local.name}") == 1


class _Payload:
    """Pickles as a call that would create ``marker``: the code a checkpoint may carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_payload_over_http_never_runs(http_server, s3, tmp_path) -> None:
    import torch

    from litpredict.process.errors import CheckpointError

    server, root = http_server
    marker = tmp_path / "payload-ran"
    folder = root / tmp_path.name
    folder.mkdir()
    weights = {"net.weight": torch.zeros(1, 10), "hook": _Payload(marker)}
    torch.save({"state_dict": weights, "epoch": 0, "global_step": 1}, folder / "evil.ckpt")
    url = f"{server.url}/{tmp_path.name}/evil.ckpt"
    with pytest.raises(CheckpointError, match="pickled Python object") as error:
        predict_in_process(tmp_path, f"ckpt_path={url}", "model=linear")
    assert url in str(error.value)  # named by its URL, not the cache's copy
    assert not marker.exists()
    assert server.requests("GET", f"/{tmp_path.name}/evil.ckpt") == 1


def _upload_tree(fs, local: Path, prefix: str) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"{prefix}/{path.relative_to(local).as_posix()}")


@pytest.mark.slow
def test_a_sweep_over_an_s3_glob_runs_in_training_order(s3, linear_run, tmp_path) -> None:
    bucket, fs, env = s3
    checkpoints = linear_run / "checkpoints"
    _upload_tree(fs, checkpoints, f"{bucket}/run/checkpoints")
    # a name that says nothing: its place comes from the epoch and step inside it
    fs.put_file(str(checkpoints / "epoch=1-step=128.ckpt"), f"{bucket}/run/checkpoints/best.ckpt")
    sweep = tmp_path / "sweep"
    run_cli(
        "predict",
        "-m",
        f"ckpt_path=glob(s3://{bucket}/run/checkpoints/*.ckpt)",
        "model=linear",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env=env,
    )
    jobs = sorted(
        (p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name.split("_")[0])
    )
    assert [p.name for p in jobs] == [
        "0_epoch=0-step=64",
        "1_best",
        "2_epoch=1-step=128",
        "3_last",
    ]
    paths = [read_manifest(job)["checkpoint"]["path"] for job in jobs]
    assert paths == [f"s3://{bucket}/run/checkpoints/{p.name.split('_', 1)[1]}.ckpt" for p in jobs]
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert len(summary) == 5 and all("complete" in row for row in summary[1:])
    predict_in_process(
        tmp_path, f"ckpt_path={checkpoints / 'epoch=0-step=64.ckpt'}", "model=linear"
    )
    assert (jobs[0] / "predictions.npy").read_bytes() == (
        tmp_path / "run" / "predictions.npy"
    ).read_bytes()


def test_an_array_file_on_s3_predicts_like_the_local_file(s3, linear_run, tmp_path) -> None:
    bucket, fs, _ = s3
    features = np.random.default_rng(7).normal(size=(300, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", features)
    fs.put_file(str(tmp_path / "x.npy"), f"{bucket}/data/x.npy")
    ckpt = f"ckpt_path={first_ckpt(linear_run)}"
    common = ("model=linear", "datamodule=array_file", ckpt)
    predict_in_process(
        tmp_path, *common, f"datamodule.path={tmp_path / 'x.npy'}", f"hydra.run.dir={tmp_path}/a"
    )
    manifest = predict_in_process(
        tmp_path,
        *common,
        f"datamodule.path=s3://{bucket}/data/x.npy",
        f"hydra.run.dir={tmp_path}/b",
    )
    assert (tmp_path / "b" / "predictions.npy").read_bytes() == (
        tmp_path / "a" / "predictions.npy"
    ).read_bytes()
    [data] = manifest["data"]
    assert data["path"] == f"s3://{bucket}/data/x.npy"
    assert data["sha256"] == sha256(tmp_path / "x.npy")
    assert data["etag"] == fs.info(f"{bucket}/data/x.npy")["ETag"].strip('"')


@pytest.fixture(scope="session")
def cnn_checkpoint(tmp_path_factory) -> Path:
    """litpredict's CNN fitted for 3 steps with plain Lightning."""
    import torch

    from litpredict.models import CNNClassifier

    path = tmp_path_factory.mktemp("cnn") / "cnn.ckpt"
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 32, 32, generator=generator)
    plain_lightning_checkpoint(CNNClassifier(), x, torch.randint(0, 10, (16,)), path)
    return path


def test_an_image_folder_on_s3_predicts_like_the_local_folder(
    s3, s3_server, cnn_checkpoint, tmp_path
) -> None:
    from test_article_models import write_image_folder

    bucket, fs, _ = s3
    write_image_folder(tmp_path / "images", n_per_class=3)
    _upload_tree(fs, tmp_path / "images", f"{bucket}/images")
    common = ("model=cnn", "datamodule=image_folder", "datamodule.num_workers=0")
    common += (f"ckpt_path={cnn_checkpoint}",)
    predict_in_process(
        tmp_path, *common, f"datamodule.root={tmp_path / 'images'}", f"hydra.run.dir={tmp_path}/a"
    )
    url = f"s3://{bucket}/images"
    manifest = predict_in_process(
        tmp_path, *common, f"datamodule.root={url}", f"hydra.run.dir={tmp_path}/b"
    )
    assert (tmp_path / "b" / "predictions.npy").read_bytes() == (
        tmp_path / "a" / "predictions.npy"
    ).read_bytes()
    local_ids = (tmp_path / "a" / "ids.txt").read_text().splitlines()
    ids = (tmp_path / "b" / "ids.txt").read_text().splitlines()
    assert ids == [
        f"{url}/{Path(i).relative_to(tmp_path / 'images').as_posix()}" for i in local_ids
    ]
    [data] = manifest["data"]
    assert (data["path"], data["files"]) == (url, 6)
    gets = s3_server.requests("GET", f"/{bucket}/images/cat/000.png")
    assert gets == 1
    again = predict_in_process(
        tmp_path, *common, f"datamodule.root={url}", f"hydra.run.dir={tmp_path}/c"
    )
    assert s3_server.requests("GET", f"/{bucket}/images/cat/000.png") == 1  # cached
    assert again["data"] == manifest["data"]
    fs.pipe(f"{bucket}/images/cat/000.png", (tmp_path / "images" / "dog" / "000.png").read_bytes())
    changed = predict_in_process(
        tmp_path, *common, f"datamodule.root={url}", f"hydra.run.dir={tmp_path}/d"
    )
    assert changed["data"][0]["sha256"] != data["sha256"]  # the fingerprint covers the objects


def s3_keys(fs, prefix: str) -> set[str]:
    return {path[len(prefix) + 1 :] for path in fs.find(prefix)}


def test_upload_to_puts_the_outputs_then_the_manifest_last(
    s3, s3_server, linear_run, tmp_path
) -> None:
    bucket, fs, _ = s3
    target = f"s3://{bucket}/out/run1"
    manifest = predict_in_process(
        tmp_path, f"ckpt_path={first_ckpt(linear_run)}", "model=linear", f"upload_to={target}"
    )
    run_dir = tmp_path / "run"
    assert manifest["upload"] == {
        "url": target,
        "files": ["predictions.npy", "manifest.json"],
        "complete": True,
    }
    assert read_manifest(run_dir)["upload"]["complete"] is True
    assert s3_keys(fs, f"{bucket}/out/run1") == {"predictions.npy", "manifest.json"}
    assert (
        fs.cat(f"{bucket}/out/run1/predictions.npy") == (run_dir / "predictions.npy").read_bytes()
    )
    assert json.loads(fs.cat(f"{bucket}/out/run1/manifest.json")) == read_manifest(run_dir)
    puts = [
        unquote(m.group(2))
        for m in map(REQUEST.search, s3_server.log.read_text().splitlines())
        if m and m.group(1) == "PUT" and f"/{bucket}/out/run1/" in unquote(m.group(2))
    ]
    assert puts[-1].endswith("/manifest.json") and len(puts) == 2


def test_an_unfinished_upload_is_finished_by_the_same_command(
    s3, s3_server, linear_run, tmp_path, monkeypatch
) -> None:
    from litpredict.process.errors import RemoteError

    bucket, fs, _ = s3
    target = f"s3://{bucket}/out/run2"
    command = (f"ckpt_path={first_ckpt(linear_run)}", "model=linear", f"upload_to={target}")
    # The store is unreachable when the run ends: predictions complete, upload not.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RemoteError, match=r"out/run2"):
        predict_in_process(tmp_path, *command)
    run_dir = tmp_path / "run"
    manifest = read_manifest(run_dir)
    assert manifest["status"] == "complete" and "upload" not in manifest  # never started
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    # As an upload stopped after its first file leaves it: its record, that file, no manifest.
    _started(run_dir, target)
    fs.put_file(str(run_dir / "predictions.npy"), f"{bucket}/out/run2/predictions.npy")
    before = s3_server.requests("PUT", f"/{bucket}/out/run2/predictions.npy")
    manifest = predict_in_process(tmp_path, *command)
    assert manifest["upload"]["complete"] is True
    assert s3_server.requests("PUT", f"/{bucket}/out/run2/predictions.npy") == before  # not again
    assert s3_server.requests("PUT", f"/{bucket}/out/run2/manifest.json") == 1
    assert json.loads(fs.cat(f"{bucket}/out/run2/manifest.json")) == read_manifest(run_dir)
    predict_in_process(tmp_path, *command)  # complete and uploaded: nothing to do
    assert s3_server.requests("PUT", f"/{bucket}/out/run2/manifest.json") == 1


def _started(run_dir: Path, target: str) -> None:
    """The local record an upload writes before it sends its first file."""
    from litpredict.rundir.files import write_json

    manifest = read_manifest(run_dir)
    files = ["predictions.npy", "manifest.json"]
    manifest["upload"] = {"url": target, "files": files, "complete": False}
    write_json(run_dir / "manifest.json", manifest)


def test_upload_never_writes_over_another_run(s3, linear_run, tmp_path) -> None:
    from litpredict.process.errors import RemoteError

    bucket, fs, _ = s3
    fs.pipe(f"{bucket}/taken/notes.txt", b"someone else's")
    with pytest.raises(RemoteError, match="already holds 1 objects"):
        predict_in_process(
            tmp_path,
            f"ckpt_path={first_ckpt(linear_run)}",
            "model=linear",
            f"upload_to=s3://{bucket}/taken",
        )
    assert fs.cat(f"{bucket}/taken/notes.txt") == b"someone else's"


@pytest.mark.slow
def test_a_sweep_uploads_one_prefix_per_job(s3, linear_run, tmp_path) -> None:
    bucket, fs, env = s3
    checkpoints = linear_run / "checkpoints"
    sweep = tmp_path / "sweep"
    run_cli(
        "predict",
        "-m",
        f"ckpt_path=glob({checkpoints}/epoch=*.ckpt)",
        "model=linear",
        f"upload_to=s3://{bucket}/sweep",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        env=env,
    )
    for job in ("0_epoch=0-step=64", "1_epoch=1-step=128"):
        keys = s3_keys(fs, f"{bucket}/sweep/{job}")
        assert {"predictions.npy", "manifest.json", ".hydra/config.yaml"} <= keys
        uploaded = json.loads(fs.cat(f"{bucket}/sweep/{job}/manifest.json"))
        assert uploaded == read_manifest(sweep / job)


def reproduce(run_dir: Path, new_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "litpredict.reproduce", str(run_dir), f"hydra.run.dir={new_dir}"],
        cwd=run_dir.parent,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests"), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_reproduce_fetches_again_and_names_a_changed_object(s3, linear_run, tmp_path) -> None:
    bucket, fs, env = s3
    key = f"{bucket}/run/model.ckpt"
    fs.put_file(str(first_ckpt(linear_run)), key)
    features = np.random.default_rng(9).normal(size=(100, 10)).astype(np.float32)
    fs.pipe(f"{bucket}/data/x.npy", _npy(features))
    predict_in_process(
        tmp_path,
        f"ckpt_path=s3://{key}",
        "model=linear",
        "datamodule=array_file",
        f"datamodule.path=s3://{bucket}/data/x.npy",
    )
    run_dir = tmp_path / "run"
    same = reproduce(run_dir, tmp_path / "again", env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "reproduced" in same.stdout

    old_etag = fs.info(key)["ETag"].strip('"')
    fs.put_file(str(linear_run / "checkpoints" / "last.ckpt"), key)
    fs.pipe(f"{bucket}/data/x.npy", _npy(features * 2))
    changed = reproduce(run_dir, tmp_path / "changed", env)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert f"input changed: checkpoint s3://{key} changed" in changed.stdout
    assert f"etag {old_etag} -> " in changed.stdout
    assert f"input changed: data s3://{bucket}/data/x.npy changed" in changed.stdout


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ddp_ranks_fetch_each_object_once(s3, s3_server, linear_run, tmp_path) -> None:
    """trainer=ddp_cpu: the checkpoint (main process) and the data (each rank's datamodule
    set-up, and the fingerprint) are each downloaded once."""
    bucket, fs, env = s3
    key = f"{bucket}/ddp/model.ckpt"
    fs.put_file(str(first_ckpt(linear_run)), key)
    features = np.random.default_rng(11).normal(size=(501, 10)).astype(np.float32)
    fs.pipe(f"{bucket}/ddp/x.npy", _npy(features))
    np.save(tmp_path / "x.npy", features)
    common = ("model=linear", "datamodule=array_file", "datamodule.batch_size=64")
    run_cli(
        "predict",
        *common,
        f"ckpt_path=s3://{key}",
        f"datamodule.path=s3://{bucket}/ddp/x.npy",
        "trainer=ddp_cpu",
        f"hydra.run.dir={tmp_path / 'ddp'}",
        cwd=tmp_path,
        env=env,
    )
    manifest = read_manifest(tmp_path / "ddp")
    assert (manifest["world_size"], manifest["num_predictions"]) == (2, 501)
    assert s3_server.requests("GET", f"/{key}") == 1
    assert s3_server.requests("GET", f"/{bucket}/ddp/x.npy") == 1
    predict_in_process(
        tmp_path,
        *common,
        f"ckpt_path={first_ckpt(linear_run)}",
        f"datamodule.path={tmp_path / 'x.npy'}",
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "ddp" / "predictions.npy"),
        np.load(tmp_path / "run" / "predictions.npy"),
        rtol=1e-6,
        atol=1e-7,
    )


def test_ranks_arriving_together_download_once(s3, s3_server, linear_run) -> None:
    """Four processes' worth of fetches at once, local rank 0 among them or last to come:
    one GET, one cached file for all (flock and the index, not Lightning, coordinate)."""
    from concurrent.futures import ThreadPoolExecutor

    from litpredict.remote.cache import fetch

    bucket, fs, _ = s3
    for order, key in (("zero first", "together/a.ckpt"), ("zero last", "together/b.ckpt")):
        fs.put_file(str(first_ckpt(linear_run)), f"{bucket}/{key}")
        url = f"s3://{bucket}/{key}"
        ranks = [0, 1, 2, 3] if order == "zero first" else [1, 2, 3, 0]

        def rank(local: int, url: str = url, late: bool = order == "zero last") -> Path:
            if late and local == 0:
                time.sleep(1.0)  # the other ranks wait for rank 0, not download themselves
            return fetch(url, first=local == 0).path

        with ThreadPoolExecutor(max_workers=4) as pool:
            paths = set(pool.map(rank, ranks))
        assert len(paths) == 1 and s3_server.requests("GET", f"/{bucket}/{key}") == 1


def test_missing_credentials_are_named(s3, tmp_path, monkeypatch) -> None:
    from litpredict.process.errors import RemoteCredentialsError

    bucket, _, _ = s3
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RemoteCredentialsError) as error:
        predict_in_process(tmp_path, f"ckpt_path=s3://{bucket}/model.ckpt", "model=linear")
    assert f"no credentials were found for s3://{bucket}/model.ckpt" in error.value.problem
    assert "AWS_ACCESS_KEY_ID" in error.value.fix
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_a_missing_object_or_bucket_is_named(s3, tmp_path) -> None:
    from litpredict.process.errors import RemoteNotFound

    bucket, _, _ = s3
    with pytest.raises(RemoteNotFound, match=f"s3://{bucket}/nothing.ckpt does not exist"):
        predict_in_process(tmp_path, f"ckpt_path=s3://{bucket}/nothing.ckpt", "model=linear")
    with pytest.raises(RemoteNotFound, match="the bucket 'no-such-bucket-x' does not exist"):
        predict_in_process(tmp_path, "ckpt_path=s3://no-such-bucket-x/a.ckpt", "model=linear")


def test_a_missing_data_object_is_named(s3, linear_run, tmp_path) -> None:
    from litpredict.process.errors import RemoteNotFound

    bucket, _, _ = s3
    with pytest.raises(RemoteNotFound, match=f"s3://{bucket}/none.npy does not exist"):
        predict_in_process(
            tmp_path,
            f"ckpt_path={first_ckpt(linear_run)}",
            "model=linear",
            "datamodule=array_file",
            f"datamodule.path=s3://{bucket}/none.npy",
        )
    assert read_manifest(tmp_path / "run")["status"] == "failed"


def test_a_protocol_without_its_package_names_the_extra(tmp_path) -> None:
    from litpredict.process.errors import MissingExtra

    try:
        import gcsfs  # noqa: F401

        pytest.skip("gcsfs is installed here")
    except ImportError:
        pass
    with pytest.raises(MissingExtra) as error:
        predict_in_process(tmp_path, "ckpt_path=gs://bucket/model.ckpt", "model=linear")
    assert error.value.fix == "pip install 'litpredict[gcs]'"
    assert "gcsfs" in error.value.problem


@pytest.mark.slow
def test_credentials_reach_neither_the_manifest_nor_a_log(s3, linear_run, tmp_path) -> None:
    bucket, fs, env = s3
    fs.put_file(str(first_ckpt(linear_run)), f"{bucket}/model.ckpt")
    run_dir = tmp_path / "run"
    run_cli(
        "predict",
        f"ckpt_path=s3://{bucket}/model.ckpt",
        "model=linear",
        f"upload_to=s3://{bucket}/out",
        f"hydra.run.dir={run_dir}",
        "hydra.verbose=true",  # every logger at DEBUG: botocore would print its headers
        cwd=tmp_path,
        env=env,
    )
    local = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in local)
    for path in [*local, *fs.find(f"{bucket}/out")]:
        text = path.read_bytes() if isinstance(path, Path) else fs.cat(path)
        assert SECRET.encode() not in text, path
        assert KEY_ID.encode() not in text, path


@pytest.mark.slow
def test_a_url_with_a_password_is_refused_before_anything_is_written(s3, tmp_path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(
        "predict",
        "ckpt_path=https://someone:hunter2hunter2@127.0.0.1:9/model.ckpt",
        "model=linear",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        check=False,
        env=s3[2],
    )
    assert result.returncode == 2
    assert "carries a credential" in result.stderr or "holds a credential" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert not run_dir.exists() or "hunter2" not in "".join(
        p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()
    )


def test_urls_with_credentials_are_refused_and_redacted() -> None:
    from litpredict.process.errors import RemoteCredentialsError
    from litpredict.remote import urls

    assert urls.redacted("https://me:pw@host/x?X-Amz-Signature=abc&a=1") == (
        "https://***@host/x?X-Amz-Signature=***&a=1"
    )
    for bad in ("https://me:pw@host/x.ckpt", "s3://bucket/x.ckpt?X-Amz-Credential=AKIA"):
        with pytest.raises(RemoteCredentialsError):
            urls.checked_url(bad)
    assert urls.checked_url(" s3://bucket/epoch=3-step=100.ckpt ") == (
        "s3://bucket/epoch=3-step=100.ckpt"
    )
    assert urls.credentials_in({"model": {"aws_secret_access_key": "x"}}) == [
        "model.aws_secret_access_key"
    ]
    assert urls.credentials_in({"model": {"token_size": 3, "ckpt": "s3://b/k"}}) == []
    assert urls.parent("s3://b/run/checkpoints/x.ckpt") == "s3://b/run/checkpoints"
    assert urls.suffixes("s3://b/data.csv.gz") == ".csv.gz"
    assert not urls.is_url("/local/epoch=3-step=100.ckpt")
    assert not urls.is_url("file:///local/x.ckpt")
