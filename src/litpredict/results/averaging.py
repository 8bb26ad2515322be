"""Checkpoints averaged into one: uniformly or as an EMA, in training order (``average``).

The work of ``python -m litpredict.average``: what is averaged and how, what is taken
from the last input, and the provenance entry. ``litpredict.average`` parses the command
line and calls :func:`average_checkpoints`.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from litpredict.process.errors import CheckpointError, UserError, filesystem_errors_explained

log = logging.getLogger(__name__)
PROVENANCE_KEY = "litpredict_average"
# Entries of the last input that describe training state, not the averaged weights.
DROPPED = ("optimizer_states", "lr_schedulers", "loops", "callbacks", "MixedPrecision")


def training_order(paths: list[Path]) -> list[Path]:
    """The order a sweep gives them: by folder, then the (epoch, global_step) each holds."""
    from hydra_plugins.litpredict._file_glob import checkpoint_sort_key

    return sorted(paths, key=lambda p: checkpoint_sort_key(str(p.resolve())))


def _check_tensors(states: list[dict[str, Any]], paths: list[Path]) -> None:
    """Every state_dict entry a tensor: only tensors can be averaged (or taken as they are)."""
    import torch

    for state, path in zip(states, paths, strict=True):
        for key, value in state.items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(
                    f"{path.name}: state_dict entry {key!r} is {type(value).__name__}, not a "
                    "tensor; only tensors can be averaged",
                    "average checkpoints whose state_dict holds only tensors (as Lightning "
                    "saves a model's parameters and buffers)",
                )


def _check_same_layout(states: list[dict[str, Any]], paths: list[Path]) -> None:
    first = states[0]
    for state, path in zip(states[1:], paths[1:], strict=True):
        if state.keys() != first.keys():
            extra = sorted(set(state) ^ set(first))[:3]
            raise CheckpointError(
                f"{path.name} and {paths[0].name} hold different state_dict keys "
                f"(e.g. {', '.join(extra)})",
                "average only checkpoints of one model",
            )
        for key, tensor in state.items():
            if tuple(tensor.shape) != tuple(first[key].shape) or tensor.dtype != first[key].dtype:
                raise CheckpointError(
                    f"{key!r} is {list(tensor.shape)} {tensor.dtype} in {path.name} but "
                    f"{list(first[key].shape)} {first[key].dtype} in {paths[0].name}",
                    "average only checkpoints of one model",
                )


def average_states(
    states: list[dict[str, Any]], ema: float | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The averaged state_dict, and the keys taken from the last state (integer, bool).

    Real tensors are averaged in float64, complex ones in complex128 (a cast to a real
    dtype would drop the imaginary part)."""
    import torch

    averaged, from_last = {}, []
    for key, last in states[-1].items():
        if not torch.is_floating_point(last) and not torch.is_complex(last):
            averaged[key] = last.clone()
            from_last.append(key)
            continue
        wide = torch.complex128 if torch.is_complex(last) else torch.float64
        if ema is None:
            total = sum(state[key].to(wide) for state in states)
            mean = total / len(states)
        else:
            mean = states[0][key].to(wide)
            for state in states[1:]:
                mean = ema * mean + (1 - ema) * state[key].to(wide)
        averaged[key] = mean.to(last.dtype)
    return averaged, from_last


@filesystem_errors_explained  # a full disk or a read-only --out: a message, not a traceback
def average_checkpoints(
    paths: list[Path], out: Path, ema: float | None = None, force: bool = False
) -> dict[str, Any]:
    """Write the averaged checkpoint to ``out``; its provenance entry.

    ``out`` follows the ownership rule (:func:`~litpredict.rundir.ownership.check_output`),
    checked before any input is read: never one of the inputs (real paths, ``force`` or
    not), never a directory, an existing file only with ``force``. Written atomically: an
    interrupted or failed average leaves nothing at ``out``, so the same command redoes it.
    """
    import torch

    from litpredict.checkpoint.reading import DROPPED_KEY, checkpoint_path, read_checkpoint
    from litpredict.rundir.files import atomic_write
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.ownership import AVERAGE, check_output

    if ema is not None and not 0 <= ema < 1:
        raise UserError(f"--ema {ema} is not a decay in [0, 1)", "pass e.g. --ema 0.9")
    check_output(out, AVERAGE, inputs=paths, force=force)
    paths = training_order([checkpoint_path(p) for p in paths])
    checkpoints = [read_checkpoint(p) for p in paths]
    states = [c["state_dict"] for c in checkpoints]
    _check_tensors(states, paths)
    _check_same_layout(states, paths)
    averaged, from_last = average_states(states, ema)
    if from_last:
        log.info(
            "not averaged, taken from the last checkpoint (%s): %s",
            paths[-1].name,
            ", ".join(from_last),
        )
    provenance = {
        "method": "uniform" if ema is None else "ema",
        "ema_decay": ema,
        "inputs": [
            {
                "path": str(p.resolve()),
                "sha256": sha256_file(p),
                "epoch": c.get("epoch"),
                "global_step": c.get("global_step"),
            }
            for p, c in zip(paths, checkpoints, strict=True)
        ],
        "taken_from_last": from_last,
    }
    result = {
        k: v for k, v in checkpoints[-1].items() if k not in (*DROPPED, DROPPED_KEY, "state_dict")
    }
    result["state_dict"] = averaged
    result[PROVENANCE_KEY] = provenance
    buffer = io.BytesIO()
    torch.save(result, buffer)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, buffer.getvalue())
    return provenance
