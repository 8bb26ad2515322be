"""Workloads: which approaches run on which input, at two sizes, how often; their rows."""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.approach import Task
from bench.approaches import APPROACHES
from bench.inputs import make_checkpoint, make_input
from bench.measure import MB, NOISY_CORES, Run, best_of, measure

INPUT_HASH = "(input fingerprint alone; litpredict runs it on a 2nd thread)"


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
    extra_runs: int = 3  # at most this many more runs of a size when none was quiet
    # A quiet run has other processes using less than this, in cores on average. The
    # LSTM's two threads wait for each other ~100 times a batch: a tenth of a core taken
    # from one of them slows both, so its runs must be quieter than the others'.
    quiet_cores: float = NOISY_CORES

    def batch_of(self, approach: str) -> int:
        return (self.article_batch or self.batch) if approach == "article" else self.batch

    def repeats_of(self, approach: str) -> int:
        if approach == "article" and self.article_repeats:
            return min(self.article_repeats, self.repeats)
        return self.repeats


@dataclass
class Row:
    """One approach on one workload: both sizes and the marginal costs between them."""

    workload: str
    approach: str
    batch: int
    small: Run
    large: Run
    noisy_runs: int = field(default=0)  # runs of it during which other processes used the CPU
    # Every trusted run of each size: the medians say what a typical run gets, where the
    # best of N (small, large) can lean on one lucky run.
    runs: tuple[list[Run], list[Run]] = field(default=((), ()))

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
    def median_rows_per_s(self) -> float | None:
        """Marginal throughput between the sizes' median work times; None without runs."""
        if not all(self.runs):
            return None
        small, large = (statistics.median(r.work_s for r in runs) for runs in self.runs)
        return self.rows / max(large - small, 1e-9)

    @property
    def bytes_per_row(self) -> float:
        return (self.large.peak_mb - self.small.peak_mb) * MB / self.rows


# litpredict beside itself committing only at the end (and after every batch, the worst
# case): what committing every 5 s, the default, costs (issue 23)
COMMITS = ("litpredict-no-commits", "litpredict-commit-every-batch")


def workloads(quick: bool) -> dict[str, Workload]:
    every = ("floor", "loop", "article", "litpredict")
    linear = ("floor", "floor-load", "article", "litpredict")
    if quick:  # a smoke run: one run each, no extra runs however busy the machine is
        return {
            "linear": Workload(
                "linear", "linear_regression", (10,), (5_000, 50_000), 65536,
                (*linear, COMMITS[0]), article_batch=1024, repeats=1, extra_runs=0,
            ),
        }  # fmt: skip
    return {
        "linear": Workload(
            "linear", "linear_regression", (10,), (1_000_000, 5_000_000), 65536,
            (*linear, *COMMITS), article_batch=1024, repeats=5,
            article_repeats=1,  # 40 s a run, far off its target
        ),
        "memory": Workload(
            "memory", "linear_regression", (10,), (1_000_000, 10_000_000), 65536,
            ("floor", "litpredict"), repeats=1,
        ),
        "cnn": Workload(
            "cnn", "image_classification", (3, 32, 32), (2_000, 20_000), 512, (*every, *COMMITS)
        ),
        "lstm": Workload(
            "lstm", "sequence", (20, 5), (10_000, 100_000), 512, every, repeats=5, quiet_cores=0.05,
        ),
    }  # fmt: skip


def run_once(approach: str, load: Workload, rows: int, paths: dict, repeat: int) -> Run:
    out = paths["workdir"] / f"out-{load.name}-{approach}-{rows}-{repeat}"
    task = Task(load.experiment, paths[rows], paths["ckpt"], load.batch_of(approach), out)
    command, done = APPROACHES[approach].command_for(task)
    run = measure(command, out.with_suffix(".log"), paths["workdir"], done)
    run.rows, run.quiet_cores = rows, load.quiet_cores
    _remove(out)
    print(
        f"  {load.name:7} {approach:10} {rows:>10,} rows  wall {run.wall_s:6.2f} s  "
        f"work {run.work_s:6.3f} s  peak {run.peak_mb:5.0f} MB (exit {run.exit_peak_mb:.0f})"
        + ("" if run.quiet else f"  [others used {run.foreign_cores:.2f} cores]"),
        flush=True,
    )
    return run


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
        for repeat in range(len(done), len(done) + load.extra_runs):
            if any(r.quiet for r in done):
                break
            done.append(run_once(approach, load, n, paths, repeat))
    rows = []
    for approach in load.approaches:
        seen = runs[approach, load.sizes[0]] + runs[approach, load.sizes[1]]
        small, large = (best_of(runs[approach, n]) for n in load.sizes)
        noisy = sum(not r.quiet for r in seen)
        trusted = tuple(
            [r for r in runs[approach, n] if r.quiet] or runs[approach, n] for n in load.sizes
        )
        rows.append(Row(load.name, approach, load.batch_of(approach), small, large, noisy, trusted))
    if "litpredict" in load.approaches and load.name == "linear":
        small, large = (hash_input(paths[n], n) for n in load.sizes)
        rows.append(Row(load.name, INPUT_HASH, 0, small, large))
    return rows


def hash_input(path: Path, rows: int, repeats: int = 3) -> Run:
    """The input fingerprint litpredict's manifest records (provenance), timed alone."""
    from litpredict.rundir.hashing import hash_file
    from litpredict.rundir.provenance import DATA_HASH

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        hash_file(path, DATA_HASH, mapped=True)  # as provenance.file_fingerprint does
        best = min(best, time.perf_counter() - start)
    return Run(rows, best, best, 0.0, 0.0)
