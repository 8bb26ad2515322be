"""A user's folder of images, one subfolder per class; sample ids are the file paths."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, random_split

from litpredict.data.base import ArrayDataModule
from litpredict.errors import FIX_PREFIX, DataError
from litpredict.writing.ids import unwritable_id_reason

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageError(DataError):
    """An image that cannot be read, named by path; it survives a DataLoader worker.

    torch re-raises a worker's exception in the main process as ``cls(message=text)``,
    ``text`` holding the worker's traceback: the problem and fix are read back from it.
    """

    def __init__(
        self, problem: str = "", fix: str | None = None, *, message: str | None = None
    ) -> None:
        if message is not None:
            name = f"{type(self).__module__}.{type(self).__qualname__}: "
            carried = message.rsplit(name, 1)[-1].strip()
            problem, _, fix = carried.partition(FIX_PREFIX)
            problem, fix = problem.strip(), fix.strip() or None
        super().__init__(problem, fix)


def _image_files(folder: Path) -> list[Path]:
    """Regular files with an image suffix under ``folder`` (a FIFO or device would block)."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        reason = unwritable_id_reason(str(path))
        if reason is not None:
            raise DataError(
                f"the image {str(path)!a} has a name that {reason}; its id (the path) "
                "cannot be written as one line of ids.txt",
                "rename the file to a name of printable UTF-8 characters",
            )
        found.append(path)
    return found


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` -> ``(image, class index)``; images in sorted path order.

    ``image_size`` resizes every image to a square of that side; ``None`` keeps sizes,
    which must then all be equal to form batches.
    """

    def __init__(self, root: str | Path, image_size: int | None = 32) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"the image folder {str(self.root)!r} does not exist",
                "pass datamodule.root=DIR with one subfolder of images per class",
            )
        self.classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.samples = [
            (path, label)
            for label, name in enumerate(self.classes)
            for path in _image_files(self.root / name)
        ]
        self.image_size = image_size
        self.sample_ids = [str(path) for path, _ in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor, resize

        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                pixels = pil_to_tensor(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for a bad file
            raise ImageError(
                f"cannot read the image {str(path)!r}: {error}",
                "replace or remove that file (it is unreadable, or not a valid image)",
            ) from error
        if self.image_size is not None and pixels.shape[1:] != (self.image_size, self.image_size):
            pixels = resize(pixels, [self.image_size, self.image_size], antialias=True)
        return pixels.float().div_(255.0), label


class ImageFolderDataModule(ArrayDataModule):
    def __init__(
        self, root: str, image_size: int | None = 32, val_fraction: float = 0.1, **loader_options
    ) -> None:
        loader_options.setdefault("batch_size", 256)
        super().__init__(**loader_options)
        self.root = root
        self.image_size = image_size
        self.val_fraction = val_fraction

    @property
    def input_files(self) -> list[Path]:
        return [Path(self.root)]

    def load_predict(self) -> ImageFolderDataset:
        return ImageFolderDataset(self.root, self.image_size)

    def load_fit(self) -> tuple[Dataset, Dataset]:
        dataset = ImageFolderDataset(self.root, self.image_size)
        n_val = max(1, int(len(dataset) * self.val_fraction))
        generator = torch.Generator().manual_seed(0)
        train, val = random_split(dataset, [len(dataset) - n_val, n_val], generator=generator)
        return train, val
