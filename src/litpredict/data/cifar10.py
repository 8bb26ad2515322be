"""CIFAR-10 from a local ``cifar-10-batches-py`` folder; downloads only when asked."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from litpredict.data.arrays import ArrayDataset
from litpredict.data.base import ArrayDataModule
from litpredict.process.errors import DataError

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32).reshape(1, 3, 1, 1)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; allow only what numpy arrays need, so no code runs."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) float32 normalised, labels (N,) int64, from one batch file."""
    with path.open("rb") as file:
        entry = _NumpyOnlyUnpickler(file, encoding="bytes").load()
    data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry[b"labels"], dtype=np.int64)
    images = (data.astype(np.float32) / 255.0 - MEAN) / STD
    return images, labels


class CIFAR10DataModule(ArrayDataModule):
    """Predicts on the test batch; fits on the five data batches (last 10% of them held out)."""

    def __init__(self, root: str, download: bool = False, **loader_options) -> None:
        loader_options.setdefault("batch_size", 256)
        super().__init__(**loader_options)
        self.root = root
        self.download = download

    @property
    def folder(self) -> Path:
        return Path(self.root).expanduser() / FOLDER

    @property
    def input_files(self) -> list[Path]:
        return [self.folder]

    def prepare_data(self) -> None:
        if self.download and not (self.folder / "test_batch").is_file():
            from torchvision.datasets.utils import download_and_extract_archive

            download_and_extract_archive(URL, str(Path(self.root).expanduser()), md5=MD5)

    def _read(self, names: list[str]) -> ArrayDataset:
        missing = [n for n in names if not (self.folder / n).is_file()]
        if missing:
            raise DataError(
                f"CIFAR-10 files {missing} are not in {str(self.folder)!r}",
                "put the extracted cifar-10-batches-py under datamodule.root, "
                "or pass datamodule.download=true (needs network access)",
            )
        parts = [read_batch(self.folder / n) for n in names]
        return ArrayDataset(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        )

    def load_predict(self) -> ArrayDataset:
        return self._read(["test_batch"])

    def load_fit(self) -> tuple[ArrayDataset, ArrayDataset]:
        full = self._read(TRAIN_BATCHES)
        cut = int(len(full) * 0.9)
        return (
            ArrayDataset(full.features[:cut], full.targets[:cut]),
            ArrayDataset(full.features[cut:], full.targets[cut:]),
        )
