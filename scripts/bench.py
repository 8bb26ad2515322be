"""Benchmark litpredict end to end against the plain-torch floor and the seed article's recipe.

Every approach runs as its own subprocess on the same ``.npy`` input and checkpoint:

- ``floor``: np.load (memory-mapped) -> torch slices -> forward -> np.save
- ``floor-load``: the same with a plain ``np.load``, which reads the whole file first (the
  issue's wording of the floor: "plain torch slicing, including np.load and np.save")
- ``loop``: TensorDataset + DataLoader (per-sample ``__getitem__`` + collate) -> forward -> cat
- ``article``: the seed article's recipe, TensorDataset + DataLoader + Trainer.predict + torch.cat
- ``litpredict``: the real command, ``python -m litpredict.predict datamodule=array_file ...``

Each workload runs at a small and a large size so that start-up (imports, checkpoint
loading, provenance) cancels out of the marginal cost per row::

    marginal time   = (work(large) - work(small)) / (large - small)
    marginal memory = (peak(large) - peak(small)) / (large - small)

``work`` is the time from the end of the imports to complete outputs, as each process
reports it (litpredict: the manifest's ``duration_s``). Importing torch and Lightning takes
5-8 s here and varies by tenths of a second, more than the whole marginal signal, so
wall times (also shown) are too noisy for the marginal. ``peak`` is the process tree's
resident memory, sampled every 20 ms until the outputs are complete; the interpreter's
exit, which touches ~100 MB whatever the data, is left out (and shown separately).

    python scripts/bench.py                          # everything, ~12 min on 2 cores
    python scripts/bench.py --quick                  # smoke run, ~1 min
    python scripts/bench.py --only linear,memory --out bench.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

MB = 1 << 20
NOISY_CORES = 0.15  # a run during which other processes used more CPU is not trusted
EXTRA_RUNS = 3  # at most this many more runs of a size when none was quiet
PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "numpy")
SAMPLE_EVERY_S = 0.02


@dataclass
class Workload:
    name: str
    experiment: str
    sample_shape: tuple[int, ...]
    sizes: tuple[int, int]
    batch: int  # litpredict's default batch size for this input, also used by floor and loop
    approaches: tuple[str, ...]
    article_batch: int | None = None  # None: the same as ``batch``
    repeats: int = 3
    article_repeats: int | None = None  # None: ``repeats``

    def batch_of(self, approach: str) -> int:
        return (self.article_batch or self.batch) if approach == "article" else self.batch

    def repeats_of(self, approach: str) -> int:
        if approach == "article" and self.article_repeats:
            return min(self.article_repeats, self.repeats)
        return self.repeats


@dataclass
class Run:
    rows: int
    wall_s: float
    work_s: float
    peak_mb: float  # until the outputs are complete
    exit_peak_mb: float  # the whole process, its exit included
    foreign_cores: float = 0.0  # CPU other processes used meanwhile, in cores on average

    @property
    def quiet(self) -> bool:
        return self.foreign_cores < NOISY_CORES


@dataclass
class Row:
    """One approach on one workload: both sizes and the marginal costs between them."""

    workload: str
    approach: str
    batch: int
    small: Run
    large: Run

    @property
    def rows(self) -> int:
        return self.large.rows - self.small.rows

    @property
    def us_per_row(self) -> float:
        return (self.large.work_s - self.small.work_s) / self.rows * 1e6

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.large.work_s - self.small.work_s, 1e-9)

    @property
    def bytes_per_row(self) -> float:
        return (self.large.peak_mb - self.small.peak_mb) * MB / self.rows


def workloads(quick: bool) -> dict[str, Workload]:
    every = ("floor", "loop", "article", "litpredict")
    linear = ("floor", "floor-load", "article", "litpredict")
    if quick:
        return {
            "linear": Workload(
                "linear", "linear_regression", (10,), (5_000, 50_000), 65536, linear,
                article_batch=1024, repeats=1,
            ),
        }  # fmt: skip
    return {
        "linear": Workload(
            "linear", "linear_regression", (10,), (1_000_000, 5_000_000), 65536, linear,
            article_batch=1024, repeats=5, article_repeats=1,  # 40 s a run, far off its target
        ),
        "memory": Workload(
            "memory", "linear_regression", (10,), (1_000_000, 10_000_000), 65536,
            ("floor", "litpredict"), repeats=1,
        ),
        "cnn": Workload("cnn", "image_classification", (3, 32, 32), (2_000, 20_000), 512, every),
        "lstm": Workload("lstm", "sequence", (20, 5), (10_000, 100_000), 512, every),
    }  # fmt: skip


# --- measuring a subprocess --------------------------------------------------------------


class TreeRss:
    """Resident memory of a process and its descendants, sampled cheaply.

    Listing the descendants scans /proc (~1 ms, a twentieth of a core at one sample per
    20 ms, taken from whichever approach runs more than one thread), so the list is
    refreshed every ``refresh_every`` samples and only the members' RSS is read between.
    """

    def __init__(self, pid: int, refresh_every: int = 10) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.refresh_every = refresh_every
        self.members: list = []
        self.samples = 0

    def __call__(self) -> int:
        import psutil

        if self.samples % self.refresh_every == 0:
            with contextlib.suppress(psutil.Error):
                self.members = [self.root, *self.root.children(recursive=True)]
        self.samples += 1
        total = 0
        for member in self.members:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
        return total


def measure(command: list[str], log: Path, cwd: Path, done: Callable[[], float | None]) -> Run:
    """Run ``command``; ``done()`` returns its work seconds once its outputs are complete."""
    peak = exit_peak = 0
    work: float | None = None
    busy, own = _busy_cpu_s(), _own_cpu_s()
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        ended = threading.Event()
        tree_rss = TreeRss(process.pid)

        def sample() -> None:
            nonlocal peak, exit_peak, work
            while not ended.wait(SAMPLE_EVERY_S):
                rss = tree_rss()
                exit_peak = max(exit_peak, rss)
                if work is None:
                    peak = max(peak, rss)
                    work = done()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        ended.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    work = work if work is not None else done()
    if process.returncode != 0 or work is None:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{tail}")
    # ru_maxrss (KiB on Linux) is the largest single process, exit included.
    exit_peak = max(exit_peak, usage.ru_maxrss * 1024)
    ours = usage.ru_utime + usage.ru_stime + _own_cpu_s() - own
    foreign = max(0.0, _busy_cpu_s() - busy - ours) / wall
    return Run(0, wall, work, peak / MB, exit_peak / MB, foreign)


def _busy_cpu_s() -> float:
    """CPU seconds all processes have used since boot (0 where /proc/stat is missing)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_done(out: Path) -> Callable[[], float | None]:
    marker = Path(f"{out}.done")
    return lambda: float(marker.read_text()) if marker.is_file() else None


def manifest_done(run_dir: Path) -> Callable[[], float | None]:
    def done() -> float | None:
        try:
            manifest = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        return manifest["duration_s"] if manifest.get("status") == "complete" else None

    return done


# --- inputs ----------------------------------------------------------------------------


def make_input(path: Path, rows: int, shape: tuple[int, ...], seed: int = 0) -> Path:
    """A float32 .npy of ``rows`` random samples, written in chunks (the bench stays small)."""
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    partial = path.with_suffix(".partial.npy")
    array = np.lib.format.open_memmap(partial, "w+", np.float32, (rows, *shape))
    step = max(1, (32 * MB) // (4 * int(np.prod(shape))))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        array[start:stop] = rng.standard_normal((stop - start, *shape), dtype=np.float32)
    array.flush()
    del array
    partial.rename(path)
    return path


def make_checkpoint(workdir: Path, experiment: str, quick: bool) -> Path:
    """A short training run of ``experiment`` with the real train command; its last.ckpt."""
    run_dir = workdir / f"train-{experiment}"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if checkpoint.is_file():
        return checkpoint
    command = [
        sys.executable, "-m", "litpredict.train", f"experiment={experiment}",
        "trainer.max_epochs=1", f"+trainer.limit_train_batches={2 if quick else 8}",
        "+trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    measure(command, workdir / f"train-{experiment}.log", workdir, checkpoint_done(checkpoint))
    return checkpoint


def checkpoint_done(checkpoint: Path) -> Callable[[], float | None]:
    return lambda: 0.0 if checkpoint.is_file() else None


# --- the approaches, each one subprocess ---------------------------------------------------


def approach_command(
    approach: str, load: Workload, data: Path, ckpt: Path, out: Path
) -> tuple[list[str], Callable[[], float | None]]:
    if approach == "litpredict":
        command = [
            sys.executable, "-m", "litpredict.predict", f"experiment={load.experiment}",
            "datamodule=array_file", f"datamodule.path={data}",
            f"datamodule.batch_size={load.batch}", f"ckpt_path={ckpt}", f"hydra.run.dir={out}",
        ]  # fmt: skip
        return command, manifest_done(out)
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", approach,
        "--data", str(data), "--ckpt", str(ckpt), "--batch", str(load.batch_of(approach)),
        "--out", str(out),
    ]  # fmt: skip
    return command, worker_done(out)


def run_once(approach: str, load: Workload, rows: int, paths: dict, repeat: int) -> Run:
    out = paths["workdir"] / f"out-{load.name}-{approach}-{rows}-{repeat}"
    command, done = approach_command(approach, load, paths[rows], paths["ckpt"], out)
    run = measure(command, out.with_suffix(".log"), paths["workdir"], done)
    run.rows = rows
    _remove(out)
    print(
        f"  {load.name:7} {approach:10} {rows:>10,} rows  wall {run.wall_s:6.2f} s  "
        f"work {run.work_s:6.3f} s  peak {run.peak_mb:5.0f} MB (exit {run.exit_peak_mb:.0f})"
        + ("" if run.quiet else f"  [others used {run.foreign_cores:.2f} cores]"),
        flush=True,
    )
    return run


def best_of(runs: list[Run]) -> Run:
    """The fastest quiet run by work time, with the smallest peaks seen (noise only adds)."""
    trusted = [r for r in runs if r.quiet] or runs
    best = min(trusted, key=lambda r: r.work_s)
    best.peak_mb = min(r.peak_mb for r in trusted)
    best.exit_peak_mb = min(r.exit_peak_mb for r in trusted)
    return best


def _remove(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    for suffix in (".npy", ".done"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)


def bench_workload(load: Workload, workdir: Path, quick: bool) -> list[Row]:
    print(f"{load.name}: {load.sizes[0]:,} and {load.sizes[1]:,} samples", flush=True)
    paths = {"workdir": workdir, "ckpt": make_checkpoint(workdir, load.experiment, quick)}
    tag = "x".join(map(str, load.sample_shape))
    for rows in load.sizes:
        paths[rows] = make_input(workdir / f"input-{tag}-{rows}.npy", rows, load.sample_shape)
    # Repeats go round all approaches, so a burst of load elsewhere hits them alike.
    runs: dict[tuple[str, int], list[Run]] = {}
    for repeat in range(load.repeats):
        for approach in (a for a in load.approaches if repeat < load.repeats_of(a)):
            for n in load.sizes:
                run = run_once(approach, load, n, paths, repeat)
                runs.setdefault((approach, n), []).append(run)
    for (approach, n), done in runs.items():
        for repeat in range(len(done), len(done) + EXTRA_RUNS):
            if any(r.quiet for r in done):
                break
            done.append(run_once(approach, load, n, paths, repeat))
    NOISY_RUNS.extend(r for done in runs.values() for r in done if not r.quiet)
    rows = []
    for approach in load.approaches:
        small, large = (best_of(runs[approach, n]) for n in load.sizes)
        rows.append(Row(load.name, approach, load.batch_of(approach), small, large))
    if "litpredict" in load.approaches and load.name == "linear":
        small, large = (hash_input(paths[n], n) for n in load.sizes)
        rows.append(Row(load.name, INPUT_HASH, 0, small, large))
    return rows


INPUT_HASH = "(input fingerprint alone; litpredict runs it on a 2nd thread)"
NOISY_RUNS: list[Run] = []  # runs during which other processes used the CPU


def hash_input(path: Path, rows: int, repeats: int = 3) -> Run:
    """The input fingerprint litpredict's manifest records (provenance), timed alone."""
    from litpredict.hashing import hash_file
    from litpredict.provenance import DATA_HASH

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        hash_file(path, DATA_HASH, mapped=True)  # as provenance.file_fingerprint does
        best = min(best, time.perf_counter() - start)
    return Run(rows, best, best, 0.0, 0.0)


def bench_startup(workdir: Path, repeats: int) -> dict[str, float]:
    """Best wall time of ``--help`` and ``--cfg job``, which must not import torch."""
    commands = {"predict --help": ["--help"], "predict --cfg job": ["--cfg", "job", "ckpt_path=x"]}
    times = {}
    for name, args in commands.items():
        command = [sys.executable, "-m", "litpredict.predict", *args]
        log = workdir / "startup.log"
        runs = [measure(command, log, workdir, lambda: 0.0).wall_s for _ in range(repeats)]
        times[name] = min(runs)
    return times


# --- workers: the baselines, run as ``bench.py --worker NAME`` -----------------------------


def _load_model(ckpt: str):
    """The checkpoint's LightningModule, rebuilt the way a plain torch user would."""
    import importlib

    import torch

    from litpredict.checkpoints import trained_model_target

    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    module, _, name = trained_model_target(checkpoint).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    model = cls(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    return cls, model.eval()


def worker_floor(data: str, ckpt: str, batch: int, out: str, mmap_mode: str | None = "r") -> None:
    """The floor: input memory-mapped (``mmap_mode=None`` reads it whole), torch slices, forward."""
    import torch

    _, model = _load_model(ckpt)
    x = np.load(data, mmap_mode=mmap_mode)
    result = None
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            y = model.predict_step(torch.from_numpy(np.array(x[start : start + batch])), 0)
            if result is None:
                result = torch.empty((len(x), *y.shape[1:]), dtype=y.dtype)
            result[start : start + len(y)] = y
    np.save(out, result.numpy())


def worker_loop(data: str, ckpt: str, batch: int, out: str) -> None:
    """A plain DataLoader loop: per-sample ``__getitem__`` and collate, forward, torch.cat."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    _, model = _load_model(ckpt)
    loader = DataLoader(TensorDataset(torch.from_numpy(np.load(data))), batch_size=batch)
    with torch.inference_mode():
        outputs = [model.predict_step(x, i) for i, (x,) in enumerate(loader)]
    np.save(out, torch.cat(outputs).numpy())


def worker_article(data: str, ckpt: str, batch: int, out: str) -> None:
    """The seed article: TensorDataset + DataLoader + Trainer.predict + torch.cat."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    cls, _ = _load_model(ckpt)
    model = cls.load_from_checkpoint(ckpt, map_location="cpu")
    loader = DataLoader(TensorDataset(torch.from_numpy(np.load(data))), batch_size=batch)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=str(Path(out).parent),
    )  # fmt: skip
    predictions = trainer.predict(model, loader)
    np.save(out, torch.cat(predictions).numpy())


def worker_floor_load(data: str, ckpt: str, batch: int, out: str) -> None:
    """The floor with a plain ``np.load``: the whole input is read into memory first."""
    worker_floor(data, ckpt, batch, out, mmap_mode=None)


WORKERS = {
    "floor": worker_floor,
    "floor-load": worker_floor_load,
    "loop": worker_loop,
    "article": worker_article,
}


def run_worker(argv: list[str]) -> int:
    """``bench.py --worker floor|loop|article --data X.npy --ckpt C --batch B --out Y``."""
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


# --- report ----------------------------------------------------------------------------


def _size(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"


def _ratio(value: float, reference: Row | None, attribute: str) -> str:
    if reference is None or getattr(reference, attribute) <= 0:
        return "-"
    return f"{value / getattr(reference, attribute):.2f}"


def per_row_table(rows: list[Row]) -> list[str]:
    floor = next((r for r in rows if r.approach == "floor"), None)
    s, b = _size(rows[0].small.rows), _size(rows[0].large.rows)
    lines = [
        f"| approach | batch | wall {s} s | wall {b} s | µs/row | x floor | peak {s} MB "
        f"| peak {b} MB | B/row | x floor |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        time_cells = f"| {r.us_per_row:.3f} | {_ratio(r.us_per_row, floor, 'us_per_row')} "
        if r.approach == INPUT_HASH:
            lines.append(f"| {r.approach} | | {r.small.wall_s:.2f} | {r.large.wall_s:.2f} "
                         f"{time_cells}| | | | |")  # fmt: skip
            continue
        lines.append(
            f"| {r.approach} | {r.batch} | {r.small.wall_s:.2f} | {r.large.wall_s:.2f} "
            f"{time_cells}| {r.small.peak_mb:.0f} | {r.large.peak_mb:.0f} "
            f"| {r.bytes_per_row:.1f} | {_ratio(r.bytes_per_row, floor, 'bytes_per_row')} |"
        )
    return lines


def throughput_table(rows: list[Row]) -> list[str]:
    loop = next((r for r in rows if r.approach == "loop"), None)
    s, b = _size(rows[0].small.rows), _size(rows[0].large.rows)
    lines = [
        f"| approach | batch | wall {s} s | wall {b} s | samples/s | x loop | peak {b} MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.approach} | {r.batch} | {r.small.wall_s:.2f} | {r.large.wall_s:.2f} "
            f"| {r.rows_per_s:,.0f} | {_ratio(r.rows_per_s, loop, 'rows_per_s')} "
            f"| {r.large.peak_mb:.0f} |"
        )
    return lines


def _over(value: float, reference: float) -> float:
    """value / reference; a reference of 0 or less (below measurable) gives +inf."""
    return value / reference if reference > 0 else float("inf")


def targets(results: dict[str, list[Row]], startup: dict[str, float]) -> list[tuple]:
    """(target, measured, limit, met) for each issue-6 / issue-3 target this run covers."""
    found = []
    by = {(r.workload, r.approach): r for rows in results.values() for r in rows}
    lit, floor, article = (by.get(("linear", a)) for a in ("litpredict", "floor", "article"))
    load = by.get(("linear", "floor-load"))
    if lit and load:
        ratio = _over(lit.us_per_row, load.us_per_row)
        found.append(("linear: time/row ÷ floor-load's", f"{ratio:.2f}", "≤ 2", ratio <= 2))
    if lit and floor:
        ratio = _over(lit.us_per_row, floor.us_per_row)
        found.append(("linear: time/row ÷ floor's (mmap)", f"{ratio:.2f}", "≤ 2", ratio <= 2))
        # Memory per row at most 1.5x the floor's (0 or less is below any floor).
        ratio = _over(lit.bytes_per_row, floor.bytes_per_row)
        found.append(("linear: memory/row ÷ floor's", f"{ratio:.2f}", "≤ 1.5", ratio <= 1.5))
    if lit and article:
        ratio = _over(article.us_per_row, lit.us_per_row)
        found.append(("linear: article's time/row ÷ ours", f"{ratio:.1f}", "≥ 8", ratio >= 8))
    memory = by.get(("memory", "litpredict"))
    if memory:
        growth = memory.large.peak_mb - memory.small.peak_mb
        limit = 10 * 4 * memory.large.rows / MB + 100  # the 10M-row input's size + 100 MB
        found.append(
            (f"peak growth {_size(memory.small.rows)}→{_size(memory.large.rows)} rows, MB",
             f"{growth:.0f}", f"< {limit:.0f}", growth < limit)
        )  # fmt: skip
    for name in ("cnn", "lstm"):
        lit, loop = by.get((name, "litpredict")), by.get((name, "loop"))
        if lit and loop:
            ratio = _over(lit.rows_per_s, loop.rows_per_s)
            found.append((f"{name}: throughput ÷ loop's", f"{ratio:.2f}", "≥ 0.9", ratio >= 0.9))
    for name, seconds in startup.items():
        found.append((f"`{name}`, s", f"{seconds:.2f}", "< 1.5", seconds < 1.5))
    return found


def machine() -> str:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES)
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
        f"{versions}; 1-min load average {os.getloadavg()[0]:.2f} at the start"
    )


TITLES = {
    "linear": "Linear 10→1, marginal cost per row",
    "memory": "Linear 10→1, 1-dim outputs: peak memory",
    "cnn": "CNN, 3x32x32 images",
    "lstm": "LSTM, 20x5 sequences",
}


def report(results: dict[str, list[Row]], startup: dict[str, float], about: str) -> str:
    lines = [f"Machine: {about}", ""]
    for name, rows in results.items():
        lines += [f"#### {TITLES.get(name, name)}", ""]
        lines += per_row_table(rows) if name in ("linear", "memory") else throughput_table(rows)
        lines.append("")
    if startup:
        lines += ["#### Start-up", "", "| command | s |", "| --- | ---: |"]
        lines += [f"| `{name}` | {seconds:.2f} |" for name, seconds in startup.items()]
        lines.append("")
    lines += [
        "#### Targets",
        "",
        "| target | measured | limit | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, value, limit, met in targets(results, startup):
        lines.append(f"| {name} | {value} | {limit} | {'yes' if met else '**no**'} |")
    lines += ["", "µs/row, B/row and samples/s are marginal: (large - small) / rows between."]
    if NOISY_RUNS:
        lines.append(
            f"{len(NOISY_RUNS)} runs had other processes using ≥ {NOISY_CORES} cores; the fastest "
            "quiet run of each size is kept (a noisy one only where none was quiet)."
        )
    return "\n".join(lines) + "\n"


def write_out(path: Path, text: str, results: dict[str, list[Row]], startup, about: str) -> None:
    if path.suffix != ".json":
        path.write_text(text)
        return
    rows = [
        {**asdict(r), "us_per_row": r.us_per_row, "rows_per_s": r.rows_per_s,
         "bytes_per_row": r.bytes_per_row}
        for rows in results.values() for r in rows
    ]  # fmt: skip
    found = [dict(zip(("target", "measured", "limit", "met"), t, strict=True)) for t in
             targets(results, startup)]  # fmt: skip
    data = {"machine": about, "rows": rows, "startup": startup, "targets": found, "table": text}
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--worker" in argv:
        return run_worker(argv)
    every = [*workloads(False), "startup"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (linear only)")
    parser.add_argument("--only", help=f"comma list of {','.join(every)}")
    parser.add_argument("--out", type=Path, help="also write the table (.md) or results (.json)")
    parser.add_argument("--workdir", type=Path, help="keep inputs and checkpoints here, reused")
    parser.add_argument("--repeats", type=int, help="runs per size and approach (best is kept)")
    args = parser.parse_args(argv)
    loads = workloads(args.quick)
    wanted = args.only.split(",") if args.only else [*loads, "startup"]
    if set(wanted) - set(every):
        parser.error(f"unknown --only {sorted(set(wanted) - set(every))}; choose from {every}")
    about = machine()
    print(f"Machine: {about}", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="litpredict-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results, startup = {}, {}
    try:
        for name in (n for n in wanted if n in loads):
            load = loads[name]
            load.repeats = args.repeats or load.repeats
            results[name] = bench_workload(load, workdir, args.quick)
        if "startup" in wanted:
            startup = bench_startup(workdir, repeats=1 if args.quick else 3)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    about += f", {os.getloadavg()[0]:.2f} at the end"
    text = report(results, startup, about)
    print("\n" + text, flush=True)
    if args.out:
        write_out(args.out, text, results, startup, about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
