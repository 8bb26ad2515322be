"""Data fingerprints in the manifest: what they hash, and that changes are seen."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import xxhash

from conftest import predict_in_process
from litpredict.process.errors import UserError
from litpredict.results.reproduction import input_changes
from litpredict.rundir import hashing, provenance


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_default_fingerprint_is_the_xxh3_128_of_the_whole_file(tmp_path) -> None:
    data = np.random.default_rng(0).bytes(3 << 20)  # several read chunks
    path = write(tmp_path / "x.bin", data)
    [entry] = provenance.data_fingerprint([path])
    assert entry["xxh3_128"] == xxhash.xxh3_128(data).hexdigest()
    assert entry["bytes"] == len(data) and entry["path"] == str(path.resolve())
    [entry] = provenance.data_fingerprint([path], "sha256")
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()  # what sha256sum prints


def test_one_changed_byte_changes_the_content(tmp_path) -> None:
    data = bytearray(np.random.default_rng(1).bytes(2 << 20))
    path = write(tmp_path / "x.bin", bytes(data))
    [before] = provenance.data_fingerprint([path])
    data[1 << 20] ^= 1
    write(path, bytes(data))
    [after] = provenance.data_fingerprint([path])
    assert provenance.content_of(before) != provenance.content_of(after)


def test_large_files_get_the_documented_quick_fingerprint(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(provenance, "FULL_HASH_LIMIT", 3 << 20)
    data = bytearray(np.random.default_rng(2).bytes(4 << 20))
    path = write(tmp_path / "big.bin", bytes(data))
    [before] = provenance.data_fingerprint([path])
    assert set(before) == {"path", "bytes", "mtime", "quick_xxh3_128"}
    data[2 << 20] ^= 1  # the middle: not read by the quick fingerprint
    write(path, bytes(data))
    [middle] = provenance.data_fingerprint([path])
    assert provenance.content_of(middle) == provenance.content_of(before)
    data[-1] ^= 1  # the last MiB: read
    write(path, bytes(data))
    [end] = provenance.data_fingerprint([path])
    assert provenance.content_of(end) != provenance.content_of(before)


def test_a_folder_changes_with_any_file_or_name(tmp_path) -> None:
    folder = tmp_path / "images"
    (folder / "a").mkdir(parents=True)
    write(folder / "a" / "1.png", b"one")
    write(folder / "2.png", b"two")
    [before] = provenance.data_fingerprint([folder])
    assert before["files"] == 2
    write(folder / "2.png", b"twO")
    [edited] = provenance.data_fingerprint([folder])
    (folder / "2.png").rename(folder / "3.png")
    [renamed] = provenance.data_fingerprint([folder])
    contents = [provenance.content_of(e) for e in (before, edited, renamed)]
    assert len({json.dumps(c, sort_keys=True) for c in contents}) == 3


def unmappable(*args, **kwargs):
    raise OSError("this file system cannot map files")


@pytest.mark.parametrize("how", ["read", "mapped", "unmappable"])
def test_hash_file_equals_the_one_shot_hash(tmp_path, monkeypatch, how) -> None:
    monkeypatch.setattr(hashing, "WINDOW", 1 << 16)  # many windows, the last one partial
    if how == "unmappable":
        monkeypatch.setattr(hashing.mmap, "mmap", unmappable)
    mapped = how != "read"
    data = np.random.default_rng(5).bytes((5 << 16) + 123)
    path = write(tmp_path / "x.bin", data)
    for algorithm, expected in (
        ("sha256", hashlib.sha256(data)),
        ("xxh3_128", xxhash.xxh3_128(data)),
    ):
        assert hashing.hash_file(path, algorithm, mapped=mapped) == expected.hexdigest()
    empty = write(tmp_path / "empty.bin", b"")
    assert hashing.hash_file(empty, mapped=mapped) == hashlib.sha256(b"").hexdigest()


def test_background_fingerprint_gives_the_same_entries(tmp_path) -> None:
    paths = [write(tmp_path / "a.bin", b"a" * 1000), tmp_path / "missing.npy"]
    background = provenance.BackgroundFingerprint(paths)
    assert background.result() == provenance.data_fingerprint(paths)


def test_background_fingerprint_reraises_on_the_callers_thread(tmp_path, monkeypatch) -> None:
    def fail(paths, algorithm, remote=None):
        raise OSError("disk gone")

    monkeypatch.setattr(provenance, "data_fingerprint", fail)
    with pytest.raises(OSError, match="disk gone"):
        provenance.BackgroundFingerprint([tmp_path]).result()


def test_unknown_hash_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown data_hash 'md4'"):
        provenance.data_fingerprint([], "md4")
    with pytest.raises(UserError, match="unknown data_hash 'md4'"):
        provenance.BackgroundFingerprint([], "md4")


def test_reproduce_reads_fingerprints_of_older_sha256_manifests(tmp_path) -> None:
    """Manifests written before XXH3 recorded SHA-256: they are checked with SHA-256."""
    ckpt = write(tmp_path / "model.ckpt", b"weights")
    data = write(tmp_path / "x.npy", b"rows")
    old_entry = {"path": str(data), "bytes": 4, "sha256": hashlib.sha256(b"rows").hexdigest()}
    manifest = {
        "checkpoint": {"path": str(ckpt), "sha256": hashlib.sha256(b"weights").hexdigest()},
        "data": [old_entry],
    }
    assert provenance.algorithm_of(manifest["data"][0]) == "sha256"
    assert input_changes(manifest) == []
    write(data, b"ROWS")
    assert input_changes(manifest) == [f"data {data} changed"]


@pytest.mark.slow
def test_predict_records_the_chosen_data_hash(trained, tmp_path) -> None:
    x = np.random.default_rng(4).normal(size=(50, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ckpt = trained["linear_regression"] / "checkpoints" / "last.ckpt"
    for algorithm, expected in (
        ("xxh3_128", xxhash.xxh3_128((tmp_path / "x.npy").read_bytes()).hexdigest()),
        ("sha256", hashlib.sha256((tmp_path / "x.npy").read_bytes()).hexdigest()),
    ):
        manifest = predict_in_process(
            tmp_path,
            "datamodule=array_file",
            f"datamodule.path={tmp_path / 'x.npy'}",
            f"ckpt_path={ckpt}",
            f"data_hash={algorithm}",
            f"hydra.run.dir={tmp_path / algorithm}",
        )
        [entry] = manifest["data"]
        assert entry[algorithm] == expected


def test_git_state_names_the_commit_and_whether_tracked_files_changed(tmp_path) -> None:
    import subprocess

    def git(*args: str) -> str:
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
        return subprocess.run(
            ["git", *identity, *args], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    assert provenance.git_state(tmp_path) is None  # no commit yet
    (tmp_path / "model.py").write_text("a = 1\n")
    git("add", "model.py")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "notes.txt").write_text("untracked files do not make it dirty")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "model.py").write_text("a = 2\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True}
    assert provenance.git_state(tmp_path / "notes.txt") is None  # not a directory: no git
