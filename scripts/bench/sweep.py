"""Sweeps over checkpoints (issue 16): litpredict vs a Python loop vs a bare Hydra multirun.

Each approach runs over 20, 60 and 100 copies of one checkpoint (the linear demo, 2048
rows a job), one process each. Start-up cancels out of the marginal cost per checkpoint::

    marginal = (wall(100) - wall(20)) / 80        slices: 20→60 and 60→100, per job

- ``litpredict``: the real command, ``-m ckpt_path=glob(DIR/epoch=*.ckpt)`` typed unquoted.
- ``loop``: what a user would write: one Trainer, then per checkpoint
  ``load_from_checkpoint`` + ``Trainer.predict`` + ``np.save`` (bench.py --worker sweep-loop).
- ``hydra``: a bare Hydra app whose task does nothing, ``-m x=range(N)``: Hydra's own cost.

Peak RSS is the largest process of each run (ru_maxrss): after 20 jobs vs after 100.
Walls and peaks are the best of :data:`REPEATS` rounds, run side by side (:func:`bench_sweep`).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.approach import ENTRY, Approach
from bench.inputs import make_checkpoint, make_input
from bench.measure import Run, measure

SIZES = (20, 60, 100)
QUICK_SIZES = (3, 6, 9)
ROWS = 2048  # the linear demo's predict split, what each litpredict job predicts
APPROACHES = ("litpredict", "loop", "hydra")
REPEATS = 3
BARE_APP = """import hydra


@hydra.main(version_base=None, config_path=None)
def main(cfg):
    pass


if __name__ == "__main__":
    main()
"""


@dataclass
class SweepRow:
    approach: str
    walls: dict[int, float]  # jobs -> wall seconds
    peaks: dict[int, float]  # jobs -> peak RSS MB

    def per_job_ms(self, first: int, last: int) -> float:
        return (self.walls[last] - self.walls[first]) / (last - first) * 1e3


def _checkpoints(workdir: Path, source: Path, count: int) -> Path:
    folder = workdir / f"sweep-ckpts-{count}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        for i in range(count):
            shutil.copyfile(source, partial / f"epoch={i:03d}-step={i}.ckpt")
        partial.rename(folder)
    return folder


def _command(approach: str, folder: Path, out: Path, data: Path, count: int) -> list[str]:
    if approach == "litpredict":
        return [
            sys.executable, "-m", "litpredict.predict", "-m",
            f"ckpt_path=glob({folder}/epoch=*.ckpt)",  # unquoted, as users type it
            "experiment=linear_regression", f"hydra.sweep.dir={out}",
        ]  # fmt: skip
    if approach == "loop":
        return [
            sys.executable, str(ENTRY), "--worker", "sweep-loop", "--data", str(data),
            "--ckpt", str(folder), "--batch", "8192", "--out", str(out),
        ]  # fmt: skip
    app = out.parent / "bare_hydra_app.py"
    app.write_text(BARE_APP)
    return [sys.executable, str(app), "-m", f"+x=range(0,{count})", f"hydra.sweep.dir={out}"]


def worker_sweep_loop(data: str, ckpt: str, batch: int, out: str) -> None:
    """The loop a user would write over a folder of checkpoints; ``ckpt`` is the folder."""
    import numpy as np
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from bench.approach import load_model

    paths = sorted(Path(ckpt).glob("epoch=*.ckpt"))
    cls, _ = load_model(str(paths[0]))
    loader = DataLoader(TensorDataset(torch.from_numpy(np.load(data))), batch_size=batch)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(Path(out).parent),
    )  # fmt: skip
    folder = Path(out).with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        model = cls.load_from_checkpoint(path, map_location="cpu")
        predictions = trainer.predict(model, loader)
        np.save(folder / f"{path.stem}.npy", torch.cat(predictions).numpy())


def _run(approach: str, folder: Path, workdir: Path, data: Path, count: int) -> Run:
    out = workdir / f"sweep-out-{approach}-{count}"
    shutil.rmtree(out, ignore_errors=True)
    command = _command(approach, folder, out, data, count)
    run = measure(command, out.with_suffix(".log"), workdir, lambda: 0.0)
    shutil.rmtree(out, ignore_errors=True)
    for leftover in (Path(f"{out}.npy"), Path(f"{out}.done")):
        leftover.unlink(missing_ok=True)
    print(
        f"  sweep   {approach:10} {count:>4} jobs  wall {run.wall_s:6.2f} s  "
        f"peak {run.exit_peak_mb:5.0f} MB"
        + ("" if run.quiet else f"  [others used {run.foreign_cores:.2f} cores]"),
        flush=True,
    )
    return run


def bench_sweep(workdir: Path, quick: bool) -> list[SweepRow]:
    """Each (approach, size) ``REPEATS`` times, the approaches side by side in every round;
    the best wall and the smallest peak of each are kept (as ``measure.best_of`` does:
    noise only adds). A burst of the machine's own noise (this VM's disk stalls) then slows
    one run, not one approach; a process-tree sample that catches a just-forked child
    (``git status`` in every job) counts the parent's pages twice in one run, not in all."""
    sizes = QUICK_SIZES if quick else SIZES
    repeats = 1 if quick else REPEATS
    print(f"sweep: {', '.join(map(str, sizes))} checkpoints, best of {repeats}", flush=True)
    source = make_checkpoint(workdir, "linear_regression", quick)
    data = make_input(workdir / f"input-10-{ROWS}.npy", ROWS, (10,))
    folders = {n: _checkpoints(workdir, source, n) for n in sizes}
    rows = {a: SweepRow(a, {}, {}) for a in APPROACHES}
    for _ in range(repeats):
        for n in sizes:
            for approach, row in rows.items():
                run = _run(approach, folders[n], workdir, data, n)
                row.walls[n] = min(row.walls.get(n, run.wall_s), run.wall_s)
                row.peaks[n] = min(row.peaks.get(n, run.exit_peak_mb), run.exit_peak_mb)
    return list(rows.values())


def sweep_table(rows: list[SweepRow]) -> list[str]:
    a, b, c = sorted(rows[0].walls)
    lines = [
        "#### Sweeps over checkpoints, linear demo (2048 rows a job), one process",
        "",
        f"| approach | wall {a} s | wall {b} s | wall {c} s | ms/ckpt {a}→{c} "
        f"| ms/job {a}→{b} | ms/job {b}→{c} | peak {a} jobs MB | peak {c} jobs MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.approach} | {r.walls[a]:.2f} | {r.walls[b]:.2f} | {r.walls[c]:.2f} "
            f"| {r.per_job_ms(a, c):.0f} | {r.per_job_ms(a, b):.0f} | {r.per_job_ms(b, c):.0f} "
            f"| {r.peaks[a]:.0f} | {r.peaks[c]:.0f} |"
        )
    return [*lines, ""]


def sweep_targets(rows: list[SweepRow]) -> list[tuple[str, str, str, bool]]:
    """Issue 16: cost per checkpoint, flat in the number of jobs, memory flat."""
    by = {r.approach: r for r in rows}
    lit, loop, bare = by["litpredict"], by["loop"], by["hydra"]
    a, b, c = sorted(lit.walls)
    ours = lit.per_job_ms(a, c)
    limit = 1.5 * (bare.per_job_ms(a, c) + loop.per_job_ms(a, c))
    early, late = lit.per_job_ms(a, b), lit.per_job_ms(b, c)
    growth = lit.peaks[c] - lit.peaks[a]
    return [
        ("sweep: ms/ckpt ≤ 1.5 x (bare Hydra + loop)", f"{ours:.0f}", f"≤ {limit:.0f}",
         ours <= limit),
        (f"sweep: ms/job {b}→{c} vs {a}→{b} (flat, 15% noise)", f"{late:.0f}",
         f"≤ {early * 1.15:.0f}", late <= early * 1.15),
        (f"sweep: peak RSS growth {a}→{c} jobs, MB", f"{growth:.0f}", "≤ 30", growth <= 30),
    ]  # fmt: skip


SWEEP_LOOP = Approach("sweep-loop", worker=worker_sweep_loop)
