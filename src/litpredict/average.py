"""``python -m litpredict.average CKPT... --out FILE.ckpt [--ema DECAY]``: one averaged checkpoint.

The inputs are put in training order (the epoch, then the step each file holds, as a sweep
orders them; ``last.ckpt`` after the checkpoint it repeats) and their
state_dicts averaged: uniformly, or as an exponential moving average (``avg = DECAY * avg +
(1 - DECAY) * next``, starting from the first). Floating tensors are averaged in float64
(complex ones in complex128: the imaginary part is averaged too) and stored in their own
dtype; integer and bool tensors (BatchNorm's
``num_batches_tracked``) cannot be averaged meaningfully and are the last input's. The
rest of the checkpoint (hyperparameters, epoch, step) is the last input's, without its
optimizer and loop states, which belong to other weights. Provenance (every input's path
and sha256) is a plain-dict ``litpredict_average`` entry, readable with weights_only=True.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from litpredict.process.reporting import run_command
from litpredict.results.averaging import average_checkpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m litpredict.average", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("checkpoints", nargs="+", type=Path, help="Lightning .ckpt files")
    parser.add_argument("--out", type=Path, required=True, help="the averaged .ckpt to write")
    parser.add_argument("--ema", type=float, metavar="DECAY", help="EMA in training order")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing --out file (never an input)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(lambda: _average(args))


def _average(args: argparse.Namespace) -> int:
    provenance = average_checkpoints(args.checkpoints, args.out, args.ema, args.force)
    names = ", ".join(Path(i["path"]).name for i in provenance["inputs"])
    print(f"{provenance['method']} average of {names} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
