"""What an image folder holds on disk: its image files, their sizes read from the headers,
and the refusal of sizes that cannot form batches."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from litpredict.data.image_options import Size
from litpredict.process.errors import DataError, ImageError
from litpredict.writing.ids import unwritable_id_reason

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_files(folder: Path) -> list[Path]:
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


SIZES_SHOWN = 4  # sizes named in the error for images of different sizes
SIZES_PROBED = 16  # distinct sizes the transforms are tried on (see _transforms_equalize)


def file_sizes(paths: Iterable[Path]) -> dict[Size, tuple[int, Path]]:
    """``{(H, W): (number of files, the first of them)}``, from the image files' headers.

    ``Image.open`` parses the header alone; no pixel is decoded. An unreadable file is
    named now, as reading it later would.
    """
    from PIL import Image

    sizes: dict[Size, tuple[int, Path]] = {}
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, ValueError, SyntaxError) as error:  # PIL's errors for a bad file
            raise unreadable(path, error) from error
        count, first = sizes.get((height, width), (0, path))
        sizes[(height, width)] = (count + 1, first)
    return sizes


def _transforms_equalize(transforms: list[Any], sizes: list[Size], channels: int) -> bool:
    """Whether ``transforms`` give images of all ``sizes`` one shape (a crop or resize does).

    Tried on blank images of up to :data:`SIZES_PROBED` of the sizes. Transforms that fail
    on a blank image are not judged here (True): the run reports what they do.
    """
    if not transforms:
        return False
    shapes = set()
    for height, width in sizes[:SIZES_PROBED]:
        image = torch.zeros(channels, height, width)
        try:
            for transform in transforms:
                image = transform(image)
        except Exception:
            return True
        shapes.add(tuple(getattr(image, "shape", ())))
    return len(shapes) == 1


def check_one_size(paths: list[Path], root: Path, transforms: list[Any], channels: int) -> None:
    """Refuse images of different sizes now (PIL reads only each file's header), unless
    ``transforms`` make them one size."""
    sizes = file_sizes(paths)
    if len(sizes) <= 1 or _transforms_equalize(transforms, list(sizes), channels):
        return
    by_count = sorted(sizes.items(), key=lambda item: -item[1][0])
    shown = [
        f"{list(size)} in {count} file(s), e.g. {_relative(first, root)}"
        for size, (count, first) in by_count[:SIZES_SHOWN]
    ]
    if len(sizes) > SIZES_SHOWN:
        shown.append(f"{len(sizes) - SIZES_SHOWN} more sizes")
    height, width = by_count[0][0]
    example = height if height == width else f"[{height},{width}]"
    after = " (datamodule.transforms do not make them equal)" if transforms else ""
    raise DataError(
        f"the images under {str(root)!r} differ in size ([H, W]): {'; '.join(shown)}. "
        f"Without datamodule.image_size nothing is resized{after}, and images of "
        "different sizes cannot form batches",
        "set datamodule.image_size=H (a square) or [H, W], the model's input size, to "
        f"resize every image (e.g. datamodule.image_size={example})",
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def unreadable(path: Path, error: BaseException) -> ImageError:
    return ImageError(
        f"cannot read the image {str(path)!r}: {error}",
        "replace or remove that file (it is unreadable, or not a valid image)",
    )
