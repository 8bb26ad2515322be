"""An image folder's options checked: ``image_size`` as (H, W), ``channels``, ``mean`` and
``std`` per channel, ``transforms`` (torchvision v2 transforms or torch modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from litpredict.process.errors import DataError

ImageSize = int | Sequence[int] | None
Size = tuple[int, int]  # (H, W)
MODES = {1: "L", 3: "RGB"}  # datamodule.channels -> the PIL mode images are read in


def image_shape(image_size: ImageSize) -> tuple[int, int] | None:
    """``image_size`` as ``(H, W)``: ``H`` is a square; ``None`` keeps the files' size."""
    if image_size is None:
        return None
    sizes = [image_size] if isinstance(image_size, int) else list(image_size)
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes
    ):
        raise DataError(
            f"datamodule.image_size={image_size!r} is not a size in pixels",
            "set datamodule.image_size=H (a square), [H, W], or null to keep the files' size",
        )
    return sizes[0], sizes[1]


def checked_transforms(transforms: Sequence[Any] | None) -> list[Any]:
    """``transforms`` if each is a torch module or a torchvision v2 transform (callable)."""
    import torch

    checked = []
    for i, transform in enumerate(transforms or []):
        module = type(transform).__module__
        if not callable(transform) or not (
            isinstance(transform, torch.nn.Module) or module.startswith("torchvision.transforms.v2")
        ):
            raise DataError(
                f"datamodule.transforms[{i}] is a {type(transform).__qualname__}, not a "
                "torchvision v2 transform or a torch module",
                "list transforms as config nodes, e.g. "
                "[{_target_: torchvision.transforms.v2.CenterCrop, size: 24}]",
            )
        checked.append(transform)
    return checked


def per_channel(values: Sequence[float] | None, channels: int, name: str) -> Any:
    """``mean``/``std`` as a (C, 1, 1) tensor; one value is used for every channel."""
    if values is None:
        return None
    values = [values] if isinstance(values, (int, float)) else list(values)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or (name == "std" and any(v == 0 for v in values)):
        raise DataError(
            f"datamodule.{name}={values} does not fit images of {channels} channels",
            f"give datamodule.{name} one (non-zero) value per channel, e.g. "
            "[0.485, 0.456, 0.406] / [0.229, 0.224, 0.225] for ImageNet, or set "
            "datamodule.channels",
        )
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 1, 1)
