"""Every approach by name, and ``bench.py --worker NAME``, which runs a baseline's worker."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.approach import Approach
from bench.article import ARTICLE
from bench.floor import FLOOR, FLOOR_LOAD
from bench.images import IMAGE_APPROACHES
from bench.loop import LOOP
from bench.ours import LITPREDICT, LITPREDICT_EVERY_BATCH, LITPREDICT_NO_COMMITS
from bench.sweep import SWEEP_LOOP

APPROACHES: dict[str, Approach] = {
    a.name: a
    for a in (
        FLOOR, FLOOR_LOAD, LOOP, ARTICLE, LITPREDICT, LITPREDICT_NO_COMMITS,
        LITPREDICT_EVERY_BATCH, SWEEP_LOOP, *IMAGE_APPROACHES,
    )
}  # fmt: skip
WORKERS = {name: a.worker for name, a in APPROACHES.items() if a.worker is not None}


def run_worker(argv: list[str]) -> int:
    """``bench.py --worker floor|loop|article|... --data X --ckpt C --batch B --out Y``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=sorted(WORKERS), required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import pytorch_lightning  # noqa: F401
    import torch  # noqa: F401  (imports are start-up, not work)

    start = time.perf_counter()
    WORKERS[args.worker](args.data, args.ckpt, args.batch, f"{args.out}.npy")
    Path(f"{args.out}.done").write_text(f"{time.perf_counter() - start:.6f}")
    return 0
