"""The fast input and output paths give exactly what the general paths give."""

from __future__ import annotations

import gc
import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler

from litpredict.checkpoint.model import compiled
from litpredict.data.arrays import (
    RELEASE_BYTES,
    ArrayDataset,
    auto_batch_size,
    collate_batch,
)
from litpredict.data.base import ArrayDataModule
from litpredict.data.samplers import ShardSampler, SliceBatchSampler
from litpredict.process.errors import DataError
from litpredict.rundir.hashing import HASHES, ThreadedDigest
from litpredict.writing.merge import merge_shards
from litpredict.writing.shard_layout import read_shards
from litpredict.writing.shard_writer import ShardWriter


@pytest.fixture
def saved(tmp_path) -> np.ndarray:
    """A memory-mapped (1000, 3) float32 array read back from a .npy file."""
    values = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", values)
    return np.load(tmp_path / "x.npy", mmap_mode="r")


def batches(dataset: ArrayDataset, sampler, size: int) -> list:
    loader = DataLoader(
        dataset, batch_sampler=SliceBatchSampler(sampler, size, False), collate_fn=collate_batch
    )
    return list(loader)


def test_in_order_batches_are_ranges_read_as_slices(saved) -> None:
    dataset = ArrayDataset(saved)
    sampler = SliceBatchSampler(SequentialSampler(dataset), 64, drop_last=False)
    assert all(isinstance(b, range) for b in sampler)
    assert len(list(sampler)) == len(sampler) == 16
    got = torch.cat(batches(dataset, SequentialSampler(dataset), 64)).numpy()
    np.testing.assert_array_equal(got, saved)


def test_strided_shards_read_every_other_row(saved) -> None:
    dataset = ArrayDataset(saved, targets=np.arange(1000))
    for rank in (0, 1):
        sampler = ShardSampler(dataset, num_replicas=2, rank=rank)
        got = batches(dataset, sampler, 100)
        np.testing.assert_array_equal(torch.cat([x for x, _ in got]).numpy(), saved[rank::2])
        np.testing.assert_array_equal(
            torch.cat([y for _, y in got]).numpy(), np.arange(rank, 1000, 2)
        )


def test_other_samplers_still_get_lists(saved) -> None:
    order = [5, 3, 999, 0]
    sampler = SliceBatchSampler(order, 3, drop_last=False)
    assert list(sampler) == [[5, 3, 999], [0]]
    dataset = ArrayDataset(saved)
    np.testing.assert_array_equal(dataset.__getitems__([5, 3, 999]).numpy(), saved[[5, 3, 999]])


def test_released_pages_read_back_unchanged(saved) -> None:
    dataset = ArrayDataset(saved)
    first = dataset.__getitems__(range(0, 500)).numpy().copy()
    again = dataset.__getitems__(range(0, 500)).numpy()
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(again, saved[:500])


def mapped_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of ``path`` (Linux's /proc/self/smaps)."""
    smaps = Path("/proc/self/smaps")
    if not smaps.is_file():
        pytest.skip("no /proc/self/smaps here")
    total, inside = 0, False
    for line in smaps.read_text().splitlines():
        if "-" in line.split(" ", 1)[0]:  # a mapping's first line: its address range
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_pages_read_are_unmapped_in_spans_and_memory_stays_flat(tmp_path) -> None:
    rows = 4 * RELEASE_BYTES // 400  # 32 MiB of 100 float32 a row
    np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.float32, (rows, 100))[:] = 1.5
    path = (tmp_path / "x.npy").resolve()
    dataset = ArrayDataset(np.load(path, mmap_mode="r"))
    batch = 256  # 100 KiB a batch
    for start in range(0, 2 * batch, batch):  # far less than a span: still mapped
        dataset.__getitems__(range(start, start + batch))
    assert mapped_kib(path) >= 150, "pages were unmapped a batch at a time"
    peak = 0
    for start in range(2 * batch, rows, batch):
        got = dataset.__getitems__(range(start, min(rows, start + batch)))
        peak = max(peak, mapped_kib(path))
    assert float(got[-1, -1]) == 1.5
    assert peak * 1024 <= RELEASE_BYTES + 2 * batch * 400 + 8192, "the input's pages piled up"


def test_float64_features_become_float32() -> None:
    dataset = ArrayDataset(np.arange(6, dtype=np.float64).reshape(3, 2))
    assert dataset.__getitems__(range(3)).dtype == torch.float32


def write(directory, batches_: list, header_rows: int, kind: str = "tensor") -> None:
    shard = ShardWriter(directory, header_rows=header_rows)
    for indices, values in batches_:
        shard.append(indices, {"prediction": values})
    shard.close(kind)


def test_a_shard_in_dataset_order_needs_no_index(tmp_path) -> None:
    values = np.arange(10, dtype=np.float32).reshape(10, 1)
    batches_ = [(range(0, 4), values[:4]), (range(4, 10), values[4:])]
    write(tmp_path / "s" / "rank00000", batches_, header_rows=10)
    (shard,) = read_shards(tmp_path / "s")
    assert shard.sequential and not (shard.directory / "index.bin").exists()
    merged = merge_shards([shard], 10, tmp_path / "staging")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)
    np.testing.assert_array_equal(np.load(tmp_path / "staging" / "prediction.npy"), values)


def test_a_shard_leaving_order_writes_the_indices_so_far(tmp_path) -> None:
    values = np.arange(6, dtype=np.float32)
    order = [(range(0, 2), values[:2]), (np.array([4, 5]), values[4:]), (range(2, 4), values[2:4])]
    write(tmp_path / "s" / "rank00000", order, header_rows=6)
    (shard,) = read_shards(tmp_path / "s")
    assert not shard.sequential
    np.testing.assert_array_equal(shard.array("index"), [0, 1, 4, 5, 2, 3])
    merged = merge_shards([shard], 6, tmp_path / "staging")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)
    assert merged.sha256 == {}


def test_an_in_order_shard_short_of_samples_is_still_an_error(tmp_path) -> None:
    values = np.arange(4, dtype=np.float32)
    write(tmp_path / "s" / "rank00000", [(range(0, 4), values)], header_rows=5)
    with pytest.raises(Exception, match="have no prediction"):
        merge_shards(read_shards(tmp_path / "s"), 5, tmp_path / "staging")


def test_a_whole_shard_becomes_the_npy_with_the_hash_computed_while_writing(tmp_path) -> None:
    values = np.random.default_rng(1).normal(size=(10, 2, 3)).astype(np.float32)
    write(tmp_path / "s" / "rank00000", [(range(0, 6), values[:6]), (range(6, 10), values[6:])],
          header_rows=10)  # fmt: skip
    shard_file = tmp_path / "s" / "rank00000" / "prediction.bin"
    inode = shard_file.stat().st_ino
    merged = merge_shards(read_shards(tmp_path / "s"), 10, tmp_path / "staging")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)
    ((path, digest),) = merged.sha256.items()
    assert path == tmp_path / "staging" / "prediction.npy"
    assert path.stat().st_ino == inode, "the shard file was copied, not renamed"
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


class GatedSha256:
    """SHA-256 whose first update waits for ``gate``: the hasher lags the caller for sure."""

    gate = threading.Event()

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self.gate.wait(timeout=30)
        self.digest.update(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def test_threaded_digest_hashes_what_it_was_given_even_if_the_buffer_is_reused(
    monkeypatch,
) -> None:
    monkeypatch.setitem(HASHES, "gated", GatedSha256)
    GatedSha256.gate.clear()
    buffer = np.zeros(1 << 16, dtype=np.float32)  # refilled, like a model's reused output
    digest, expected = ThreadedDigest("gated"), hashlib.sha256(b"header")
    digest.update(b"header")
    for value in range(4):
        buffer[:] = value
        digest.update(buffer)
        expected.update(buffer.tobytes())
    buffer[:] = -1  # before the thread has hashed any of it
    GatedSha256.gate.set()
    assert digest.hexdigest() == expected.hexdigest()
    with pytest.raises(ValueError, match="after hexdigest"):
        digest.update(b"late")


def test_threaded_digest_refills_its_blocks_and_takes_any_buffer() -> None:
    rng = np.random.default_rng(1)
    digest, expected = ThreadedDigest("sha256", min_block=1 << 16), hashlib.sha256()
    for _ in range(40):  # 40 x 123 KB through 64 KiB blocks: each filled, hashed, refilled
        batch = rng.normal(size=(512, 20, 3)).astype(np.float32)
        digest.update(batch)
        expected.update(batch.tobytes())
    strided = np.arange(30, dtype=np.int64).reshape(5, 6)[:, ::2]  # not C-contiguous
    digest.update(strided)
    expected.update(strided.tobytes())
    digest.update(b"")
    assert digest.hexdigest() == expected.hexdigest()


def test_threaded_digest_holds_at_most_max_pending_bytes(monkeypatch) -> None:
    monkeypatch.setitem(HASHES, "gated", GatedSha256)
    GatedSha256.gate.clear()
    block = np.ones(1 << 20, dtype=np.uint8)
    digest = ThreadedDigest("gated", max_pending=2 << 20)
    feeding = threading.Thread(target=lambda: [digest.update(block) for _ in range(3)], daemon=True)
    feeding.start()
    feeding.join(timeout=1)
    assert feeding.is_alive(), "a third MiB was queued while two were waiting to be hashed"
    GatedSha256.gate.set()
    feeding.join(timeout=30)
    assert not feeding.is_alive()
    assert digest.hexdigest() == hashlib.sha256(block.tobytes() * 3).hexdigest()


class FailingDigest:
    def update(self, data: bytes) -> None:
        raise MemoryError("no room")


def test_threaded_digest_reraises_its_error_and_never_blocks_the_writer(monkeypatch) -> None:
    monkeypatch.setitem(HASHES, "failing", FailingDigest)
    digest = ThreadedDigest("failing", max_pending=4096)  # each update waits for the last
    feeding = threading.Thread(
        target=lambda: [digest.update(b"x" * 4096) for _ in range(20)], daemon=True
    )
    feeding.start()
    feeding.join(timeout=30)
    assert not feeding.is_alive(), "update() blocked on a thread that had failed"
    with pytest.raises(MemoryError, match="no room"):
        digest.hexdigest()


def test_a_digest_dropped_unfinished_stops_its_thread() -> None:
    digest = ThreadedDigest("sha256")
    digest.update(b"a failed run's first batch")
    thread = digest._thread
    del digest
    gc.collect()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_shards_of_two_ranks_scatter_and_are_hashed_afterwards(tmp_path) -> None:
    values = np.arange(7, dtype=np.int64)
    write(tmp_path / "s" / "rank00000", [(np.array([0, 2, 4, 6]), values[::2])], header_rows=7)
    write(tmp_path / "s" / "rank00001", [(np.array([1, 3, 5]), values[1::2])], header_rows=7)
    merged = merge_shards(read_shards(tmp_path / "s"), 7, tmp_path / "m")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)
    assert merged.sha256 == {}


@pytest.mark.parametrize(
    ("shape", "itemsize", "rows"),
    [((10,), 4, 65536), ((100,), 4, 8192), ((10**6,), 4, 1024), ((3, 32, 32), 4, 512),
     ((20, 5), 4, 512), ((3, 224, 224), 4, 16), ((3, 2048, 2048), 4, 16)],
)  # fmt: skip
def test_auto_batch_size_follows_the_sample(shape, itemsize, rows) -> None:
    assert auto_batch_size(shape, itemsize) == rows


def test_batch_size_must_be_a_count_or_auto() -> None:
    module = ArrayDataModule(batch_size="many")
    with pytest.raises(DataError, match="batch_size"):
        module.prediction_batch_size(ArrayDataset(np.zeros((3, 2), np.float32)))
    module = ArrayDataModule(batch_size="auto")
    assert module.prediction_batch_size(ArrayDataset(np.zeros((3, 10), np.float32))) == 65536


def test_compile_is_off_unless_asked() -> None:
    model = torch.nn.Linear(2, 1)
    assert compiled(model, False) is model and compiled(model, None) is model
