"""A user's folder of images: one subfolder per class, or flat (unlabelled); ids are the paths.

Each image is read as ``channels`` (1: grayscale, 3: RGB), resized to ``image_size``
(``H`` or ``[H, W]``; ``null``, the default, keeps the files' size), scaled to [0, 1],
passed through ``transforms`` (torchvision v2 transforms or torch modules built from
config) and last normalized by ``mean`` and ``std`` (one value per channel).

Nothing is resized unless asked: with ``image_size`` null, images of different sizes
cannot form batches, so that is an error when the dataset is set up (read from the files'
headers), naming the sizes found and the key to set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, random_split

from litpredict.data.base import ArrayDataModule
from litpredict.data.decode_check import DecodeCheck, checked_decode_check, first_samples
from litpredict.data.image_decoding import EXACT, FAST, read_image
from litpredict.data.image_files import EXTENSIONS, check_one_size, image_files, unreadable
from litpredict.data.image_options import (
    MODES,
    ImageSize,
    checked_transforms,
    image_shape,
    per_channel,
)
from litpredict.process.errors import DataError

log = logging.getLogger(__name__)


class ImageFolderDataset(Dataset):
    """``root/<class>/<image>`` -> ``(image, class index)``; a flat ``root/<image>`` -> image.

    A folder with subfolders is labelled (the sorted subfolder names are the classes);
    one with images only is unlabelled, and batches are the images alone. Images are in
    sorted path order; with ``image_size=None`` their sizes must be equal to form batches
    (checked here, from the files' headers, unless ``transforms`` make them equal).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: ImageSize = None,
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        transforms: Sequence[Any] | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"the image folder {str(self.root)!r} does not exist",
                "pass datamodule.root=DIR: images, or one subfolder of images per class",
            )
        if channels not in MODES:
            raise DataError(
                f"datamodule.channels={channels!r}: images are read as 1 (grayscale) or 3 (RGB)",
                "set datamodule.channels=1 or datamodule.channels=3",
            )
        self.classes = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        loose = [p for p in image_files(self.root) if p.parent == self.root]
        if self.classes and loose:
            raise DataError(
                f"the image folder {str(self.root)!r} holds both images and subfolders: "
                "neither one class per subfolder nor a flat folder of images",
                "move the images into class subfolders, or point datamodule.root at a folder "
                "of images only",
            )
        self.labelled = bool(self.classes)
        if self.labelled:
            self.samples = [
                (path, label)
                for label, name in enumerate(self.classes)
                for path in image_files(self.root / name)
            ]
        else:
            self.samples = [(path, None) for path in loose]
        self.shape = image_shape(image_size)
        self.mode = MODES[channels]
        self.mean = per_channel(mean, channels, "mean")
        self.std = per_channel(std, channels, "std")
        self.transforms = checked_transforms(transforms)
        self.sample_ids = [str(path) for path, _ in self.samples]
        # Decode JPEGs at a reduced size (datamodule.decode=fast, chosen while predicting
        # by ImageFolderDataModule); what the choice was, for the manifest.
        self.fast = False
        self.run_record: dict[str, Any] | None = None
        if self.shape is None:
            paths = [path for path, _ in self.samples]
            check_one_size(paths, self.root, self.transforms, len(self.mode))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        return self.item(index, self.fast)

    def item(self, index: int, fast: bool) -> Any:
        """Sample ``index``, its file decoded ``fast`` or exactly (see :mod:`.image_decoding`)."""
        path, label = self.samples[index]
        try:
            image = read_image(path, self.mode, self.shape, fast)
        except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for a bad file
            raise unreadable(path, error) from error
        for transform in self.transforms:
            image = transform(image)
        if self.mean is not None:
            image = image - self.mean
        if self.std is not None:
            image = image / self.std
        return image if label is None else (image, label)


class ImageFolderDataModule(ArrayDataModule):
    """An image folder's datamodule; ``decode="fast"`` decodes JPEGs at a reduced size when
    predicting, once :class:`~litpredict.data.decode_check.DecodeCheck` has compared it
    with exact decoding through the model (the first ``decode_check_images`` images, at
    most a batch); below ``decode_threshold`` agreement it decodes exactly. Training
    always decodes exactly.
    """

    def __init__(
        self,
        root: str,
        image_size: ImageSize = None,
        val_fraction: float = 0.1,
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        transforms: Sequence[Any] | None = None,
        decode: str = EXACT,
        decode_threshold: float = 0.98,
        decode_check_images: int = 64,
        **loader_options,
    ) -> None:
        loader_options.setdefault("batch_size", 256)
        super().__init__(**loader_options)
        self.root = root
        self.image_size = image_size
        self.val_fraction = val_fraction
        self.decode = decode
        self.decode_options = (decode, decode_threshold, decode_check_images)  # checked in setup
        self.decode_checker: DecodeCheck | None = None
        self._decode_record: dict[str, Any] | None = None
        self.image_options = {
            "image_size": image_size,
            "channels": channels,
            "mean": mean,
            "std": std,
            "transforms": transforms,
        }

    @property
    def input_files(self) -> list[Path | str]:
        from litpredict.remote.urls import is_url

        return [self.root if is_url(self.root) else Path(self.root)]

    def _dataset(self) -> ImageFolderDataset:
        """The images under ``root``; a URL's are fetched into the cache (once per node) and
        read from a local tree of them, with their URLs as sample ids."""
        from litpredict.remote.urls import is_url

        if not is_url(self.root):
            return ImageFolderDataset(self.root, **self.image_options)
        from litpredict.remote.folders import mirror

        tree = mirror(str(self.root), suffixes=EXTENSIONS)
        dataset = ImageFolderDataset(tree.root, **self.image_options)
        dataset.sample_ids = [tree.url_of(path) for path in dataset.sample_ids]
        return dataset

    def load_predict(self) -> ImageFolderDataset:
        # Checked here, not in __init__: Hydra's instantiate would bury the message.
        self.decode_checker = checked_decode_check(*self.decode_options)
        return self._dataset()

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool = False, sampler=None):
        trainer = self.trainer
        if self.decode_checker and self.decode == FAST and trainer and trainer.predicting:
            self._choose_decode(dataset, batch_size, self.decode_checker)
        return super()._loader(dataset, batch_size, shuffle=shuffle, sampler=sampler)

    def _choose_decode(self, dataset: Dataset, batch_size: int, check: DecodeCheck) -> None:
        """Fast or exact decoding for ``dataset``, before its loader starts any worker."""
        images, indices = first_samples(dataset, min(batch_size, check.images))
        if not isinstance(images, ImageFolderDataset):
            raise DataError(
                f"datamodule.decode=fast reads image folders, not a {type(images).__qualname__}",
                "set datamodule.decode=exact",
            )
        if self._decode_record is None:
            if images.shape is None:
                log.warning(
                    "datamodule.decode=fast needs datamodule.image_size (the size to decode "
                    "for); without it every image is decoded whole"
                )
                self._decode_record = check.skipped()
            else:
                workers = self.num_workers
                self._decode_record = check.run(self.trainer, images.item, indices, workers)
        images.fast = self._decode_record["used"] == FAST
        images.run_record = {"decode_check": self._decode_record}

    def load_fit(self) -> tuple[Dataset, Dataset]:
        self.decode_checker = checked_decode_check(*self.decode_options)  # split=val|train
        dataset = self._dataset()
        if not dataset.labelled:
            raise DataError(
                f"the image folder {self.root!r} has no class subfolders: nothing to train on",
                "put the training images in one subfolder per class",
            )
        n_val = max(1, int(len(dataset) * self.val_fraction))
        generator = torch.Generator().manual_seed(0)
        train, val = random_split(dataset, [len(dataset) - n_val, n_val], generator=generator)
        return train, val
