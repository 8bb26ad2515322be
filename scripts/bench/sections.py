"""What ``--only`` chooses from: each section runs, then hands the report its part.

A new section (e.g. a sweep benchmark) is a function ``(Options) -> SectionResult`` and one
``Section`` in :func:`sections`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.image_section import bench_images, image_table, image_targets
from bench.measure import NOISY_CORES
from bench.startup import bench_startup
from bench.sweep import bench_sweep, sweep_table, sweep_targets
from bench.workloads import Workload, bench_workload, workloads


@dataclass(frozen=True)
class Options:
    workdir: Path
    quick: bool
    repeats: int | None = None  # runs per size and approach; None: each workload's own


@dataclass
class SectionResult:
    table: list[str]  # markdown lines, title included
    targets: list[report.Target] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # for --out FILE.json; lists are concatenated
    noisy_runs: int = 0
    quiet_cores: float = NOISY_CORES  # what its noisy runs exceeded


@dataclass(frozen=True)
class Section:
    name: str
    run: Callable[[Options], SectionResult]


def workload_section(load: Workload) -> Section:
    def run(options: Options) -> SectionResult:
        load.repeats = options.repeats or load.repeats
        rows = bench_workload(load, options.workdir, options.quick)
        return SectionResult(
            table=report.workload_table(load.name, rows),
            targets=report.workload_targets(load.name, rows),
            data={"rows": report.row_data(rows)},
            noisy_runs=sum(r.noisy_runs for r in rows),
            quiet_cores=load.quiet_cores,
        )

    return Section(load.name, run)


def startup_section(options: Options) -> SectionResult:
    startup = bench_startup(options.workdir, 1 if options.quick else 3, options.quick)
    return SectionResult(
        table=report.startup_table(startup),
        targets=report.startup_targets(startup),
        data={"startup": startup},
    )


def sweep_section(options: Options) -> SectionResult:
    rows = bench_sweep(options.workdir, options.quick)
    return SectionResult(
        table=sweep_table(rows),
        targets=sweep_targets(rows),
        data={"sweep": [vars(r) for r in rows]},
    )


def images_section(options: Options) -> SectionResult:
    result = bench_images(options.workdir, options.quick, options.repeats)
    return SectionResult(
        table=image_table(result),
        targets=image_targets(result),
        data={
            "rows": report.row_data(result.rows),
            "images": {
                "agreement": result.agreement,
                "decode_check": result.decode_check,
                "cpu_ms_per_image": result.cpu_ms,
            },
        },
        noisy_runs=result.noisy_runs,
    )


def sections(quick: bool) -> dict[str, Section]:
    """The sections a run (``--quick`` or not) can hold, in their default order."""
    found = [workload_section(load) for load in workloads(quick).values()]
    found.append(Section("images", images_section))
    found.append(Section("startup", startup_section))
    if not quick:  # 3 x 180 jobs, minutes: --quick (the CI smoke test) stays fast
        found.append(Section("sweep", sweep_section))
    return {section.name: section for section in found}
