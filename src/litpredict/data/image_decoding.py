"""One image file to pixels: ``exact`` (the whole image, as PIL decodes it) or ``fast``.

Camera-size JPEGs cost far more to decode than a small model costs to run on them, and
most of that work is thrown away by the resize to the model's input size. ``fast`` asks
the JPEG decoder for a smaller image (DCT scaling, PIL's ``Image.draft``): 1/2, 1/4 or 1/8
of the size, the largest reduction that still covers the target size, for a fraction of
the work. The pixels are then resized to the target size exactly as ``exact`` resizes the
whole image, so the two differ only by what the reduced decode leaves out (about half a
grey level on average on 1600x1200 photos-like images resized to 224). Other formats (PNG,
WebP, ...) have no reduced decode: ``fast`` reads them whole, as ``exact`` does, and so
does ``fast`` without a target size.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

EXACT = "exact"
FAST = "fast"
DECODES = (EXACT, FAST)


def read_image(path: Path, mode: str, shape: tuple[int, int] | None, fast: bool) -> torch.Tensor:
    """The image at ``path`` in PIL ``mode``, resized to ``shape``, as float32 ``(C, H, W)``
    in [0, 1].

    ``shape`` is ``(H, W)``, or ``None`` to keep the file's size. Raises PIL's errors
    (``OSError``, ``ValueError``, ``SyntaxError``) for a file it cannot read.
    """
    from PIL import Image
    from torchvision.transforms.v2.functional import resize

    with Image.open(path) as image:
        if fast and shape is not None:
            image.draft(mode, (shape[1], shape[0]))  # a no-op for formats other than JPEG
        # convert() to the mode the image already has is a copy of it: the same pixels.
        pixels = _uint8_chw(image if image.mode == mode else image.convert(mode))
    if shape is not None and tuple(pixels.shape[1:]) != shape:
        pixels = resize(pixels, list(shape), antialias=True)
    return pixels.float().div_(255.0)


def _uint8_chw(image: Any) -> torch.Tensor:
    """torchvision's ``pil_to_tensor`` (the same pixels, a ``(C, H, W)`` view of ``(H, W, C)``
    bytes) with one copy of the whole image fewer: the bytes PIL packs are the tensor's.

    They are read-only: the tensor never leaves :func:`read_image`, whose resize and
    ``float()`` make new tensors.
    """
    data = image.tobytes()
    if not data:
        from torchvision.transforms.v2.functional import pil_to_tensor

        return pil_to_tensor(image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given buffer is not writable"
        flat = torch.frombuffer(data, dtype=torch.uint8)
    return flat.view(image.height, image.width, -1).permute(2, 0, 1)
