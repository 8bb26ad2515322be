"""``datamodule.decode=fast``, checked against exact decoding before the first batch.

Fast decoding changes the pixels a little (:mod:`litpredict.data.image_decoding`); whether
that changes predictions depends on the model. So before predicting, the first images of
the predict dataset (as many as a batch holds, at most ``images``) go through the model
twice, decoded exactly and decoded fast, and their outputs are compared. An image agrees
when every output agrees:

- class scores (a float output of shape ``(N, C)``, ``C > 1``): the same class (argmax);
- integer or boolean outputs (class ids, masks): equal;
- other float outputs (values): within :data:`RELATIVE_TOLERANCE` of exact, relative to
  the size of the exact output (the vector norm of the image's row).

Below ``threshold`` (a share of the images) the run decodes exactly, with a warning. The
record (``{images, agreement, threshold, used, seconds}``) goes into the manifest as
``decode_check``.

It runs when the predict loader is made, after the model is on its device and before any
loader worker starts: the whole run then decodes one way, and nothing is predicted twice
into the outputs. Under DDP global rank 0 decides, on the dataset's first images whatever
its share of them, and sends its record to the other ranks, so every rank decodes alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from litpredict.data.image_decoding import DECODES, EXACT, FAST
from litpredict.process.errors import DataError, describe, first_line

log = logging.getLogger(__name__)

RELATIVE_TOLERANCE = 0.05  # a value output within 5% of exact agrees

Sample = Callable[[int, bool], Any]  # (dataset index, fast) -> the dataset's sample


@dataclass(frozen=True)
class DecodeCheck:
    """Decides between fast and exact decoding from the model's outputs on both."""

    threshold: float = 0.98
    images: int = 64

    def run(
        self, trainer: Any, sample: Sample, indices: Sequence[int], workers: int = 0
    ) -> dict[str, Any]:
        """The record, decided on global rank 0 and the same on every rank.

        ``indices`` are the dataset indices of the images to compare (all of them are
        used, so pass at most :attr:`images`); ``workers`` loader processes decode them
        (the predict loader's number: 64 camera-size images decode in about a second).
        """
        record: dict[str, Any] | None = None
        failure: BaseException | None = None
        if trainer.is_global_zero:
            try:
                record = self._compare(trainer, sample, indices, workers)
            except Exception as error:  # sent to the other ranks too, so none waits forever
                failure, record = error, {"failed": first_line(describe(error))}
        record = trainer.strategy.broadcast(record, src=0)
        if failure is not None:
            raise failure
        if "failed" in record:
            raise DataError(
                f"the check of datamodule.decode=fast failed on rank 0: {record['failed']}",
                "see rank 0's error above; datamodule.decode=exact predicts without the check",
            )
        if trainer.is_global_zero and record["used"] == EXACT:
            log.warning(
                "datamodule.decode=fast: %.1f%% of %d images got the predictions of exact "
                "decoding, below the threshold of %g%%; decoding exactly instead (lower "
                "datamodule.decode_threshold to accept it)",
                100 * record["agreement"],
                record["images"],
                100 * record["threshold"],
            )
        return record

    def skipped(self) -> dict[str, Any]:
        """The record of a run that asked for fast decoding with no size to decode for."""
        return {"images": 0, "agreement": None, "threshold": self.threshold, "used": EXACT}

    def _compare(
        self, trainer: Any, sample: Sample, indices: Sequence[int], workers: int
    ) -> dict[str, Any]:
        from torch.utils.data import DataLoader, default_collate

        start = time.perf_counter()
        pairs = DataLoader(
            _BothDecodes(sample, indices), batch_size=None, num_workers=min(workers, len(indices))
        )
        exact, fast = zip(*pairs, strict=True)
        outputs = {}
        for decoded, samples in ((False, exact), (True, fast)):
            outputs[decoded] = _predict(trainer, default_collate(list(samples)))
        agreeing = agreement(outputs[False], outputs[True], len(indices))
        return {
            "images": len(indices),
            "agreement": round(agreeing, 4),
            "threshold": self.threshold,
            "used": FAST if agreeing >= self.threshold else EXACT,
            "seconds": round(time.perf_counter() - start, 3),
        }


class _BothDecodes:
    """A map-style dataset: item k is sample ``indices[k]`` decoded exactly and fast."""

    def __init__(self, sample: Sample, indices: Sequence[int]) -> None:
        self.sample = sample
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[Any, Any]:
        return self.sample(self.indices[k], False), self.sample(self.indices[k], True)


def _predict(trainer: Any, batch: Any) -> Any:
    """The model's ``predict_step`` on ``batch`` as the predict loop runs it: on the
    trainer's device and precision, in eval mode, without gradients; outputs on the CPU."""
    model = trainer.lightning_module
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.inference_mode():
            batch = trainer.precision_plugin.convert_input(batch)
            batch = trainer.strategy.batch_to_device(batch)
            with trainer.precision_plugin.predict_step_context():
                output = model.predict_step(batch, 0)
    finally:
        for module, training in modes.items():
            module.training = training
    return _on_cpu(output)


def _on_cpu(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach().cpu()
    if isinstance(output, Mapping):
        return {k: _on_cpu(v) for k, v in output.items()}
    if isinstance(output, (tuple, list)):
        return [_on_cpu(v) for v in output]
    return output


def _tensors(output: Any) -> dict[str, torch.Tensor]:
    """The tensors of a ``predict_step`` output by name: a tensor, a sequence or a dict."""
    if isinstance(output, torch.Tensor):
        return {"": output}
    if isinstance(output, Mapping):
        items = output.items()
    elif isinstance(output, (tuple, list)):
        items = enumerate(output)
    else:
        return {}
    return {str(k): v for k, v in items if isinstance(v, torch.Tensor)}


def agreement(exact: Any, fast: Any, count: int) -> float:
    """The share of ``count`` images whose outputs agree (see the module's docstring).

    Outputs that cannot be compared per image (no tensors, or no row per image) agree
    nowhere: the run then decodes exactly.
    """
    exact_tensors, fast_tensors = _tensors(exact), _tensors(fast)
    if not exact_tensors or exact_tensors.keys() != fast_tensors.keys():
        return 0.0
    agrees = torch.ones(count, dtype=torch.bool)
    for key, reference in exact_tensors.items():
        agrees &= _agreeing_rows(reference, fast_tensors[key], count)
    return float(agrees.float().mean()) if count else 0.0


def _agreeing_rows(exact: torch.Tensor, fast: torch.Tensor, count: int) -> torch.Tensor:
    """One bool per image: whether its row of ``fast`` agrees with that of ``exact``."""
    if exact.ndim == 0 or exact.shape != fast.shape or exact.shape[0] != count:
        return torch.zeros(count, dtype=torch.bool)
    if not (exact.is_floating_point() or exact.is_complex()):
        return (exact == fast).reshape(count, -1).all(dim=1)
    if exact.ndim == 2 and exact.shape[1] > 1:  # class scores
        return exact.argmax(dim=1) == fast.argmax(dim=1)
    reference = exact.reshape(count, -1).double()
    difference = torch.linalg.vector_norm(fast.reshape(count, -1).double() - reference, dim=1)
    size = torch.linalg.vector_norm(reference, dim=1)
    return difference <= RELATIVE_TOLERANCE * size


def checked_decode_check(decode: str, threshold: float, images: int) -> DecodeCheck:
    """The check ``datamodule.decode*`` ask for; a value that makes no sense is an error."""
    if decode not in DECODES:
        raise DataError(
            f"datamodule.decode={decode!r} is not a way to decode images",
            "set datamodule.decode=exact (every pixel as the file has it) or fast (JPEGs "
            "decoded at a reduced size, checked against exact before predicting)",
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
        raise DataError(
            f"datamodule.decode_threshold={threshold!r} is not a share of images",
            "set it between 0 and 1, e.g. 0.98 (98% of the checked images must agree)",
        )
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise DataError(
            f"datamodule.decode_check_images={images!r} is not a number of images",
            "set it to a positive number, e.g. 64",
        )
    return DecodeCheck(float(threshold), images)


def first_samples(dataset: Any, count: int) -> tuple[Any, list[int]]:
    """The dataset under ``dataset``'s ``Subset`` s (split=val or train) and the indices in
    it of ``dataset``'s first ``count`` samples."""
    from torch.utils.data import Subset

    indices = list(range(min(count, len(dataset))))
    while isinstance(dataset, Subset):
        indices = [int(dataset.indices[i]) for i in indices]
        dataset = dataset.dataset
    return dataset, indices
