"""Array-backed datasets that fetch whole batches, and the ``auto`` batch size for them."""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from litpredict.process.errors import DataError


def _as_index(indices: Sequence[int]) -> slice | np.ndarray:
    """A slice when the indices are one evenly spaced run (zero-copy on memory maps)."""
    if isinstance(indices, range) and indices.step > 0:
        return slice(indices.start, indices.stop, indices.step)
    index = np.asarray(indices, dtype=np.int64)
    first = int(index[0])
    if int(index[-1]) - first + 1 == len(index) and bool(np.all(np.diff(index) == 1)):
        return slice(first, first + len(index))
    return index


def _tensor(rows: np.ndarray, copy: bool) -> torch.Tensor:
    """A writable tensor of ``rows``; ``copy`` for views into the dataset (memory maps).

    Big-endian files (``>f4`` from another machine) are converted to native byte order:
    torch only holds native arrays.
    """
    if not rows.dtype.isnative:
        rows = rows.astype(rows.dtype.newbyteorder("="))
        copy = False
    if rows.dtype == np.float64:
        return torch.from_numpy(rows.astype(np.float32))
    return torch.from_numpy(np.array(rows, copy=True) if copy else np.ascontiguousarray(rows))


RELEASE_BYTES = 8 << 20  # pages of input read are unmapped this many bytes at a time


def _page_span(rows: np.ndarray) -> tuple[Any, int, int] | None:
    """``(map, start, stop)``: the pages of a read-only memory map that ``rows`` lie on."""
    handle = getattr(rows, "_mmap", None)
    if handle is None or getattr(rows, "mode", None) != "r" or not hasattr(handle, "madvise"):
        return None
    if rows.size == 0 or min(rows.strides, default=0) < 0:
        return None
    low = rows.ctypes.data
    span = sum((n - 1) * step for n, step in zip(rows.shape, rows.strides, strict=True))
    high = low + span + rows.itemsize
    base = np.frombuffer(handle, dtype=np.uint8).ctypes.data
    start = (low - base) // mmap.PAGESIZE * mmap.PAGESIZE
    stop = min(len(handle), -(-(high - base) // mmap.PAGESIZE) * mmap.PAGESIZE)
    return (handle, start, stop) if stop > start >= 0 else None


class PageRelease:
    """Unmaps the pages of a memory-mapped input once they are copied, in spans.

    A read-only memory map keeps every page it has touched in the process's resident
    memory, so reading a file once from start to end would grow RSS by the file's size.
    The pages stay in the page cache: reading them again costs a minor fault, not I/O.
    Each ``madvise`` makes the kernel flush the TLB of every core running this process
    (torch's threads): once a 200 KB batch it took ~30 us of an LSTM's 8 ms batch here,
    so pages read one after another are gathered and unmapped :data:`RELEASE_BYTES` at
    a time: at most that much more stays resident.
    """

    def __init__(self) -> None:
        self._pending: tuple[Any, int, int] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"_pending": None}  # a DataLoader worker starts with nothing pending

    def add(self, rows: np.ndarray) -> None:
        """Note that ``rows`` (a view into a memory map) are copied and may be unmapped."""
        span = _page_span(rows)
        if span is None:
            return
        pending = self._pending
        if pending is not None and span[0] is pending[0] and _touch(span, pending):
            span = (span[0], min(span[1], pending[1]), max(span[2], pending[2]))
            pending = None
        if pending is not None:
            _unmap(*pending)
        self._pending = span
        if span[2] - span[1] >= RELEASE_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._pending is not None:
            _unmap(*self._pending)
            self._pending = None


def _touch(a: tuple[Any, int, int], b: tuple[Any, int, int]) -> bool:
    """Whether two page spans overlap or meet end to start."""
    return a[1] <= b[2] and b[1] <= a[2]


def _unmap(handle: Any, start: int, stop: int) -> None:
    with contextlib.suppress(OSError, ValueError):  # only memory is at stake (or map closed)
        handle.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _take(array: np.ndarray, index: slice | np.ndarray, release: PageRelease) -> torch.Tensor:
    rows = array[index]
    if not isinstance(index, slice):
        return _tensor(rows, copy=False)  # fancy indexing already copied
    tensor = _tensor(rows, copy=True)
    release.add(rows)
    return tensor


AUTO = "auto"
AUTO_ROWS = (4 << 20, 1024, 65536)  # tabular rows: 4 MiB a batch, within 1024..65536 rows
AUTO_SAMPLES = (16 << 20, 16, 512)  # images, sequences: 16 MiB a batch, within 16..512
AUTO_BATCH = 256  # datasets that are not arrays (one sample's size unknown)


def auto_batch_size(sample_shape: Sequence[int], itemsize: int) -> int:
    """The ``auto`` prediction batch size: a power of two by the size of one sample.

    Tabular rows (1-d samples) feed cheap models, where per-batch costs (~0.2 ms of
    Lightning's loop, the writer) would dominate: as many rows as fit in 4 MiB (10
    float32 features: 65536). Images and sequences feed compute-bound models whose
    activations outgrow the caches in big batches (the LSTM ran 27k sequences/s at 512,
    15k/s at 8192 here): up to 512, fewer for samples so large that 512 exceed 16 MiB.
    """
    budget, low, high = AUTO_ROWS if len(sample_shape) == 1 else AUTO_SAMPLES
    sample_bytes = max(1, int(np.prod(sample_shape, dtype=np.int64)) * itemsize)
    count = budget // sample_bytes
    return min(high, max(low, 1 << max(0, count.bit_length() - 1)))


def collate_batch(batch: Any) -> Any:
    """Batches come ready-made from ``ArrayDataset.__getitems__``; pass them through."""
    return batch


class ArrayDataset(Dataset):
    """Rows of ``features`` (and ``targets``) as samples; ``(x, y)`` with targets, else ``x``.

    ``__getitems__`` lets torch's DataLoader fetch a whole batch with one slice instead
    of one ``__getitem__`` and a collate per sample, which dominates tabular prediction.
    """

    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray | None = None,
        sample_ids: Sequence[str] | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(features):
            raise DataError(
                f"the targets have {len(targets)} rows but the features have {len(features)}",
                "give a target file with one row per sample",
            )
        if sample_ids is not None and len(sample_ids) != len(features):
            raise DataError(
                f"{len(sample_ids)} sample ids for {len(features)} samples",
                "give one id per sample",
            )
        self.features = features
        self.targets = targets
        self.sample_ids = sample_ids
        self._released = (PageRelease(), PageRelease())  # features', targets' pages

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]) -> Any:
        index = _as_index(indices)
        x = _take(self.features, index, self._released[0])
        if self.targets is None:
            return x
        return x, _take(self.targets, index, self._released[1])
