"""The report: the machine, one table per section, the targets met or not, the JSON file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from bench.measure import MB, NOISY_CORES
from bench.workloads import INPUT_HASH, Row

PACKAGES = ("torch", "pytorch-lightning", "hydra-core", "numpy")
Target = tuple[str, str, str, bool]  # (target, measured, limit, met)

TITLES = {
    "linear": "Linear 10→1, marginal cost per row",
    "memory": "Linear 10→1, 1-dim outputs: peak memory",
    "cnn": "CNN, 3x32x32 images",
    "lstm": "LSTM, 20x5 sequences",
}


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
    floor = next((r for r in rows if r.approach == "floor"), None)
    s, b = _size(rows[0].small.rows), _size(rows[0].large.rows)
    lines = [
        f"| approach | batch | wall {s} s | wall {b} s | samples/s | x loop | x floor "
        f"| x floor, medians | peak {b} MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.approach} | {r.batch} | {r.small.wall_s:.2f} | {r.large.wall_s:.2f} "
            f"| {r.rows_per_s:,.0f} | {_ratio(r.rows_per_s, loop, 'rows_per_s')} "
            f"| {_ratio(r.rows_per_s, floor, 'rows_per_s')} "
            f"| {_median_ratio(r, floor)} | {r.large.peak_mb:.0f} |"
        )
    return lines


def _median_ratio(row: Row, reference: Row | None) -> str:
    """``row``'s median throughput over ``reference``'s, or ``-`` where either has none."""
    if reference is None or row.median_rows_per_s is None or not reference.median_rows_per_s:
        return "-"
    return f"{row.median_rows_per_s / reference.median_rows_per_s:.2f}"


def workload_table(name: str, rows: list[Row]) -> list[str]:
    table = per_row_table(rows) if name in ("linear", "memory") else throughput_table(rows)
    return [f"#### {TITLES.get(name, name)}", "", *table, ""]


def startup_table(startup: dict[str, float]) -> list[str]:
    lines = ["#### Start-up", "", "| command | s |", "| --- | ---: |"]
    return [*lines, *(f"| `{name}` | {seconds:.2f} |" for name, seconds in startup.items()), ""]


def _over(value: float, reference: float) -> float:
    """value / reference; a reference of 0 or less (below measurable) gives +inf."""
    return value / reference if reference > 0 else float("inf")


def workload_targets(name: str, rows: list[Row]) -> list[Target]:
    """The issue-6 / issue-3 targets a workload's rows cover."""
    found: list[Target] = []
    by = {r.approach: r for r in rows}
    lit = by.get("litpredict")
    if name == "linear" and lit:
        floor, article, load = by.get("floor"), by.get("article"), by.get("floor-load")
        if load:
            ratio = _over(lit.us_per_row, load.us_per_row)
            found.append(("linear: time/row ÷ floor-load's", f"{ratio:.2f}", "≤ 2", ratio <= 2))
        if floor:
            ratio = _over(lit.us_per_row, floor.us_per_row)
            found.append(("linear: time/row ÷ floor's (mmap)", f"{ratio:.2f}", "≤ 2", ratio <= 2))
            # Memory per row at most 1.5x the floor's (0 or less is below any floor).
            ratio = _over(lit.bytes_per_row, floor.bytes_per_row)
            found.append(("linear: memory/row ÷ floor's", f"{ratio:.2f}", "≤ 1.5", ratio <= 1.5))
        if article:
            ratio = _over(article.us_per_row, lit.us_per_row)
            found.append(("linear: article's time/row ÷ ours", f"{ratio:.1f}", "≥ 8", ratio >= 8))
    if name == "memory" and lit:
        growth = lit.large.peak_mb - lit.small.peak_mb
        limit = 10 * 4 * lit.large.rows / MB + 100  # the 10M-row input's size + 100 MB
        found.append(
            (f"peak growth {_size(lit.small.rows)}→{_size(lit.large.rows)} rows, MB",
             f"{growth:.0f}", f"< {limit:.0f}", growth < limit)
        )  # fmt: skip
    off = by.get("litpredict-no-commits")
    if name == "linear" and lit and off:  # issue 23: committing costs at most 3%
        ratio = _over(lit.us_per_row, off.us_per_row)
        found.append(
            ("linear: time/row ÷ without commits", f"{ratio:.3f}", "≤ 1.03", ratio <= 1.03)
        )
    if name in ("cnn", "lstm") and lit and off:
        ratio = _over(off.rows_per_s, lit.rows_per_s)
        found.append(
            (f"{name}: throughput without commits ÷ with", f"{ratio:.3f}", "≤ 1.03", ratio <= 1.03)
        )  # fmt: skip
        if lit.median_rows_per_s and off.median_rows_per_s:
            ratio = off.median_rows_per_s / lit.median_rows_per_s
            found.append(
                (f"{name}: throughput without commits ÷ with (medians)", f"{ratio:.3f}",
                 "≤ 1.03", ratio <= 1.03)
            )  # fmt: skip
    loop = by.get("loop")
    if name in ("cnn", "lstm") and lit and loop:
        ratio = _over(lit.rows_per_s, loop.rows_per_s)
        found.append((f"{name}: throughput ÷ loop's", f"{ratio:.2f}", "≥ 0.9", ratio >= 0.9))
    floor = by.get("floor")
    if name == "lstm" and lit and floor:  # issue 25
        ratio = _over(lit.rows_per_s, floor.rows_per_s)
        found.append(("lstm: throughput ÷ floor's", f"{ratio:.3f}", "≥ 0.95", ratio >= 0.95))
        if lit.median_rows_per_s and floor.median_rows_per_s:
            ratio = lit.median_rows_per_s / floor.median_rows_per_s
            found.append(
                ("lstm: throughput ÷ floor's (medians)", f"{ratio:.3f}", "≥ 0.95", ratio >= 0.95)
            )
    return found


def startup_targets(startup: dict[str, float]) -> list[Target]:
    from bench.startup import LIGHT

    light = {name: s for name, s in startup.items() if name in LIGHT}
    return [(f"`{name}`, s", f"{s:.2f}", "< 1.5", s < 1.5) for name, s in light.items()]


def row_data(rows: list[Row]) -> list[dict]:
    return [
        {**asdict(r), "us_per_row": r.us_per_row, "rows_per_s": r.rows_per_s,
         "bytes_per_row": r.bytes_per_row, "median_rows_per_s": r.median_rows_per_s}
        for r in rows
    ]  # fmt: skip


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


def report(results: list, about: str) -> str:
    """Markdown for the ``SectionResult`` s, in order, and every target they cover."""
    lines = [f"Machine: {about}", ""]
    for result in results:
        lines += result.table
    lines += [
        "#### Targets",
        "",
        "| target | measured | limit | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, value, limit, met in (t for result in results for t in result.targets):
        lines.append(f"| {name} | {value} | {limit} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "µs/row, B/row and samples/s are marginal: (large - small) / rows between, from the "
        'fastest run of each size; "medians" from the median run of each size instead (what '
        "a typical run gets: a best of N can lean on one lucky run).",
    ]
    noisy = sum(result.noisy_runs for result in results)
    if noisy:
        limits = sorted({r.quiet_cores for r in results if r.noisy_runs}, reverse=True)
        lines.append(
            f"{noisy} runs had other processes using ≥ {' or '.join(map(str, limits))} cores "
            f"(a workload's own limit, {NOISY_CORES} unless it says less); the fastest "
            "quiet run of each size is kept (a noisy one only where none was quiet)."
        )
    return "\n".join(lines) + "\n"


def write_out(path: Path, text: str, results: list, about: str) -> None:
    """The table (``.md``, any suffix) or, for ``.json``, every section's data and targets."""
    if path.suffix != ".json":
        path.write_text(text)
        return
    data: dict = {"machine": about, "rows": [], "startup": {}}
    for result in results:
        for key, value in result.data.items():
            if isinstance(value, list):
                data.setdefault(key, []).extend(value)
            else:
                data[key] = value
    found = [t for result in results for t in result.targets]
    data["targets"] = [
        dict(zip(("target", "measured", "limit", "met"), t, strict=True)) for t in found
    ]
    data["table"] = text
    path.write_text(json.dumps(data, indent=2) + "\n")
