"""Timing, CPU noise and resident memory of one subprocess, until its outputs are complete."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20
NOISY_CORES = 0.15  # a run during which other processes used more CPU is not trusted
SAMPLE_EVERY_S = 0.02

Done = Callable[[], "float | None"]  # work seconds once the outputs are complete, else None


@dataclass
class Run:
    rows: int
    wall_s: float
    work_s: float
    peak_mb: float  # until the outputs are complete
    exit_peak_mb: float  # the whole process, its exit included
    foreign_cores: float = 0.0  # CPU other processes used meanwhile, in cores on average
    cpu_s: float = 0.0  # CPU the process and its waited-for children used, exit included
    quiet_cores: float = NOISY_CORES  # the most other processes may use in a quiet run

    @property
    def quiet(self) -> bool:
        return self.foreign_cores < self.quiet_cores


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


def measure(command: list[str], log: Path, cwd: Path, done: Done) -> Run:
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
    return Run(0, wall, work, peak / MB, exit_peak / MB, foreign, usage.ru_utime + usage.ru_stime)


def best_of(runs: list[Run]) -> Run:
    """The fastest quiet run by work time, with the smallest peaks seen (noise only adds)."""
    trusted = [r for r in runs if r.quiet] or runs
    best = min(trusted, key=lambda r: r.work_s)
    best.peak_mb = min(r.peak_mb for r in trusted)
    best.exit_peak_mb = min(r.exit_peak_mb for r in trusted)
    return best


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


def worker_done(out: Path) -> Done:
    """A ``--worker`` writes its work seconds to ``<out>.done`` when its outputs are saved."""
    marker = Path(f"{out}.done")
    return lambda: float(marker.read_text()) if marker.is_file() else None


def manifest_done(run_dir: Path) -> Done:
    """litpredict's work seconds: the manifest's ``duration_s`` once it says complete."""

    def done() -> float | None:
        try:
            manifest = json.loads((run_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        return manifest["duration_s"] if manifest.get("status") == "complete" else None

    return done


def file_done(path: Path) -> Done:
    return lambda: 0.0 if path.is_file() else None
