"""The image section's inputs and approaches: camera-size JPEGs, resized to 224 for a tiny CNN.

- ``torchvision``: ``torchvision.datasets.ImageFolder`` with ``Resize((224, 224))`` and
  ``ToTensor()``, a DataLoader with 2 workers, forward, ``torch.cat``, ``np.save``: the loop
  a user writes.
- ``decode-floor``: the reduced-size decode floor: PIL's ``draft`` (JPEG DCT scaling) and
  PIL's resize in a plain Dataset, a DataLoader with 2 workers, forward, ``np.save``.
- ``litpredict-exact`` / ``litpredict-fast``: the real command, ``datamodule=image_folder``
  with ``datamodule.decode=exact`` or ``fast``, 2 loader workers.

Every approach reads the same folder (one class subfolder, as ``ImageFolder`` needs) with
the same checkpoint: ``experiment=image_classification`` trained with ``model.width=2``,
predicting channels-last (about 1.2 ms of CPU per 224x224 image here, a fifth of a
reduced-size decode, so decoding dominates).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from bench.approach import Approach, Task, load_model
from bench.measure import Done, manifest_done

IMAGE_SIZE = 224
WORKERS = 2
CLASS_FOLDER = "images"  # ImageFolder wants class subfolders; litpredict reads it as labelled
TEXTURES = 16  # distinct random textures; each image is one of them, shifted and maybe flipped


def _texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A photo-like RGB texture: a smooth random colour field plus sensor-like noise, so
    JPEG compresses it about as it compresses photos (~0.5 MB at 1600x1200, quality 90)."""
    from PIL import Image

    coarse = (rng.random((height // 48 + 2, width // 48 + 2, 3)) * 255).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    noise = rng.integers(-8, 9, size=smooth.shape, dtype=np.int16)
    return np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def make_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    """``folder/images/00000.jpg ...``: ``count`` JPEGs of ``size`` (W, H), made once.

    A folder of ``count`` images shares its first files with a bigger one (hard links), so
    the two sizes of a run differ only by the extra files.
    """
    from PIL import Image

    images = folder / CLASS_FOLDER
    done = folder / ".complete"
    if done.is_file():
        return folder
    images.mkdir(parents=True, exist_ok=True)
    pool = folder.parent / f"jpeg-pool-{size[0]}x{size[1]}"
    pool.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    textures: list[np.ndarray] = []
    for i in range(count):
        source = pool / f"{i:05d}.jpg"
        if not source.is_file():
            if not textures:
                textures = [_texture(rng, *size) for _ in range(TEXTURES)]
            shift = (int(rng.integers(size[1])), int(rng.integers(size[0])))
            pixels = np.roll(textures[i % TEXTURES], shift, axis=(0, 1))
            if i % 2:
                pixels = pixels[:, ::-1]
            partial = source.with_suffix(".partial")
            Image.fromarray(np.ascontiguousarray(pixels)).save(partial, "JPEG", quality=90)
            partial.rename(source)
        target = images / source.name
        if not target.exists():
            os.link(source, target)
    done.write_text(str(count))
    return folder


def tiny_cnn(ckpt: str):
    """The checkpoint's CNN, channels-last as ``model.channels_last=true`` predicts."""
    _, model = load_model(ckpt)
    model.channels_last = True
    model.setup("predict")
    return model


def worker_torchvision(data: str, ckpt: str, batch: int, out: str) -> None:
    """``ImageFolder`` + ``Resize`` + ``ToTensor``, 2 DataLoader workers, forward, np.save."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    model = tiny_cnn(ckpt)
    size = (IMAGE_SIZE, IMAGE_SIZE)
    resize = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    folder = datasets.ImageFolder(data, transform=resize)
    loader = DataLoader(folder, batch_size=batch, num_workers=WORKERS)
    with torch.inference_mode():
        outputs = [model.predict_step(x, i) for i, (x, _) in enumerate(loader)]
    np.save(out, torch.cat(outputs).numpy())


class ReducedDecode:
    """The floor's dataset: each JPEG decoded at a reduced size (``draft``), PIL-resized."""

    def __init__(self, folder: Path) -> None:
        self.files = sorted((folder / CLASS_FOLDER).glob("*.jpg"))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(self.files[index]) as image:
            image.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))
            small = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        return pil_to_tensor(small).float().div_(255.0)


def worker_decode_floor(data: str, ckpt: str, batch: int, out: str) -> None:
    """The reduced-size decode floor: draft + resize, 2 DataLoader workers, forward, np.save."""
    import torch
    from torch.utils.data import DataLoader

    model = tiny_cnn(ckpt)
    loader = DataLoader(ReducedDecode(Path(data)), batch_size=batch, num_workers=WORKERS)
    with torch.inference_mode():
        outputs = [model.predict_step(x, i) for i, x in enumerate(loader)]
    np.save(out, torch.cat(outputs).numpy())


def _litpredict(decode: str):
    def command(task: Task) -> tuple[list[str], Done]:
        return [
            sys.executable, "-m", "litpredict.predict", f"experiment={task.experiment}",
            "datamodule=image_folder", f"datamodule.root={task.data}",
            f"datamodule.image_size={IMAGE_SIZE}", f"datamodule.num_workers={WORKERS}",
            f"datamodule.batch_size={task.batch}", f"datamodule.decode={decode}",
            "model.channels_last=true", f"ckpt_path={task.ckpt}", f"hydra.run.dir={task.out}",
        ], manifest_done(task.out)  # fmt: skip

    return command


TORCHVISION = Approach("torchvision", worker=worker_torchvision)
DECODE_FLOOR = Approach("decode-floor", worker=worker_decode_floor)
LITPREDICT_EXACT = Approach("litpredict-exact", command=_litpredict("exact"))
LITPREDICT_FAST = Approach("litpredict-fast", command=_litpredict("fast"))
IMAGE_APPROACHES = (TORCHVISION, DECODE_FLOOR, LITPREDICT_EXACT, LITPREDICT_FAST)
