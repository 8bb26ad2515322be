"""The image section: marginal time per image of each approach in :mod:`bench.images`.

Two folders (200 and 1000 JPEGs of 1600x1200; ``--quick``: 4 and 12 of 640x480), every
approach on both, round after round so that a burst of load elsewhere hits them alike;
the fastest quiet run of each is kept. ``ms/image`` is the marginal cost,
``(work(large) - work(small)) / (large - small)``, so start-up, the first batch and
litpredict's decode check cancel out. ``CPU ms/image`` is the same marginal of the CPU
time the process and its loader workers used (the least of each size's runs): with other
work on the machine it moves far less than time does. ``= exact`` is the share of images
whose prediction (the CNN's class id) equals ``litpredict-exact``'s, on the large folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.approach import Task
from bench.images import IMAGE_APPROACHES, make_jpegs
from bench.inputs import make_checkpoint
from bench.measure import Run, best_of, measure
from bench.workloads import Row

EXPERIMENT = "image_classification"
MODEL = ("model.width=2",)  # a tiny CNN: decoding dominates
NAMES = tuple(a.name for a in IMAGE_APPROACHES)
REFERENCE = "litpredict-exact"


@dataclass
class ImageResult:
    sizes: tuple[int, int]
    image: tuple[int, int]  # the JPEGs' (W, H)
    batch: int
    rows: list[Row]
    agreement: dict[str, float] = field(default_factory=dict)  # approach -> share = exact
    decode_check: dict | None = None  # litpredict-fast's manifest record, large folder
    noisy_runs: int = 0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # approach -> marginal CPU ms/image

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.approach == name), None)


def _run(name: str, task: Task, workdir: Path, keep: dict) -> Run:
    from bench.approaches import APPROACHES

    command, done = APPROACHES[name].command_for(task)
    run = measure(command, Path(f"{task.out}.log"), workdir, done)
    outputs = task.out / "predictions.npy" if task.out.is_dir() else Path(f"{task.out}.npy")
    keep[name] = np.load(outputs)
    manifest = task.out / "manifest.json"
    if manifest.is_file():
        import json

        keep[f"{name}:manifest"] = json.loads(manifest.read_text())
    shutil.rmtree(task.out, ignore_errors=True)
    for suffix in (".npy", ".done"):
        Path(f"{task.out}{suffix}").unlink(missing_ok=True)
    return run


def bench_images(workdir: Path, quick: bool, repeats: int | None = None) -> ImageResult:
    sizes, image, batch = ((4, 12), (640, 480), 4) if quick else ((200, 1000), (1600, 1200), 64)
    repeats = repeats or (1 if quick else 2)
    extra_runs = 0 if quick else 2
    print(f"images: {sizes[0]} and {sizes[1]} JPEGs of {image[0]}x{image[1]}", flush=True)
    folders = {n: make_jpegs(workdir / f"jpegs-{image[0]}x{image[1]}-{n}", n, image) for n in sizes}
    ckpt = make_checkpoint(workdir, EXPERIMENT, quick, MODEL)
    runs: dict[tuple[str, int], list[Run]] = {}
    kept: dict = {}

    def once(name: str, n: int, repeat: int) -> None:
        out = workdir / f"out-images-{name}-{n}-{repeat}"
        task = Task(EXPERIMENT, folders[n], ckpt, batch, out)
        keep = kept if n == sizes[1] else {}
        run = _run(name, task, workdir, keep)
        run.rows = n
        runs.setdefault((name, n), []).append(run)
        print(
            f"  images  {name:16} {n:>6,} images  wall {run.wall_s:6.2f} s  work "
            f"{run.work_s:6.3f} s  peak {run.peak_mb:5.0f} MB"
            + ("" if run.quiet else f"  [others used {run.foreign_cores:.2f} cores]"),
            flush=True,
        )

    for repeat in range(repeats):
        for name in NAMES:
            for n in sizes:
                once(name, n, repeat)
    for (name, n), done in list(runs.items()):
        for repeat in range(len(done), len(done) + extra_runs):
            if any(r.quiet for r in done):
                break
            once(name, n, repeat)
    rows, noisy, cpu_ms = [], 0, {}
    for name in NAMES:
        cpu = [min(r.cpu_s for r in runs[name, n]) for n in sizes]
        cpu_ms[name] = (cpu[1] - cpu[0]) / (sizes[1] - sizes[0]) * 1000
        small, large = (best_of(runs[name, n]) for n in sizes)
        noisy += sum(not r.quiet for n in sizes for r in runs[name, n])
        rows.append(Row("images", name, batch, small, large))
    reference = kept[REFERENCE]
    agreement = {
        name: float(np.mean(kept[name] == reference)) if kept[name].shape == reference.shape else 0
        for name in NAMES
    }
    check = kept.get("litpredict-fast:manifest", {}).get("decode_check")
    return ImageResult(sizes, image, batch, rows, agreement, check, noisy, cpu_ms)


def _ms(row: Row) -> float:
    return row.us_per_row / 1000


def image_table(result: ImageResult) -> list[str]:
    s, b = result.sizes
    tv = result.row("torchvision")
    lines = [
        f"#### Images: {result.image[0]}x{result.image[1]} JPEGs resized to 224, tiny CNN, "
        f"2 loader workers, batch {result.batch}",
        "",
        f"| approach | wall {s} s | wall {b} s | ms/image | x torchvision | images/s "
        f"| CPU ms/image | x torchvision | = exact | peak {s} MB | peak {b} MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    cpu = result.cpu_ms
    for r in result.rows:
        speed = f"{_ms(tv) / _ms(r):.2f}" if tv and _ms(r) > 0 else "-"
        mine, theirs = cpu.get(r.approach, 0), cpu.get("torchvision", 0)
        cpu_speed = f"{theirs / mine:.2f}" if mine > 0 else "-"
        lines.append(
            f"| {r.approach} | {r.small.wall_s:.2f} | {r.large.wall_s:.2f} | {_ms(r):.2f} "
            f"| {speed} | {r.rows_per_s:,.0f} | {mine:.2f} | {cpu_speed} "
            f"| {100 * result.agreement.get(r.approach, 0):.1f}% "
            f"| {r.small.peak_mb:.0f} | {r.large.peak_mb:.0f} |"
        )
    if result.decode_check:
        c = result.decode_check
        lines += ["", f"litpredict-fast's decode check: {c}"]
    return [*lines, ""]


def image_targets(result: ImageResult):
    """The issue-25 targets: exact no slower than torchvision, fast 2x it and within 1.5x
    of the reduced-size decode floor, with at least 98% of predictions equal to exact's."""
    tv, floor = result.row("torchvision"), result.row("decode-floor")
    exact, fast = result.row("litpredict-exact"), result.row("litpredict-fast")
    found = []
    if tv and exact:
        ratio = _ms(exact) / _ms(tv) if _ms(tv) > 0 else float("inf")
        found.append(("images: exact ms/image ÷ torchvision's", f"{ratio:.2f}", "≤ 1", ratio <= 1))
    if tv and fast:
        ratio = _ms(tv) / _ms(fast) if _ms(fast) > 0 else float("inf")
        found.append(("images: torchvision ms/image ÷ fast's", f"{ratio:.2f}", "≥ 2", ratio >= 2))
    if floor and fast:
        ratio = _ms(fast) / _ms(floor) if _ms(floor) > 0 else float("inf")
        found.append(
            ("images: fast ms/image ÷ decode floor's", f"{ratio:.2f}", "≤ 1.5", ratio <= 1.5)
        )
    share = result.agreement.get("litpredict-fast", 0.0)
    used = (result.decode_check or {}).get("used")
    found.append(
        (f"images: fast's predictions = exact's (decode check used {used})",
         f"{100 * share:.1f}%", "≥ 98%", share >= 0.98 and used == "fast")
    )  # fmt: skip
    return found
