"""``summary.png``: how prediction quality moves with training, or what each job produced.

With labelled predict data: each metric against the checkpoint's training step, one line
per training run. Without labels: predictions and throughput per job. Uses matplotlib's
Agg canvas directly (no pyplot, no global backend), so it works in any job process.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from litpredict.rundir.manifest import COMPLETE

_FAILED = "#c0392b"
_OK = "#2e86c1"


def _run_name(checkpoint: str | None) -> str:
    """The training run a checkpoint came from: ``runs/a/checkpoints/x.ckpt`` -> ``a``."""
    if not checkpoint:
        return "?"
    parent = Path(checkpoint).parent
    return parent.parent.name if parent.name == "checkpoints" else parent.name


def _metric_axes(figure, rows: list[dict[str, Any]], metrics: list[str]) -> None:
    for i, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), i + 1)
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in rows:
            complete = row["status"] == COMPLETE and row.get("step") is not None
            if complete and metric in row["metrics"]:
                run = _run_name(row.get("checkpoint"))
                series[run].append((row["step"], row["metrics"][metric]))
        for name, points in sorted(series.items()):
            xs, ys = zip(*sorted(set(points)), strict=True)
            axes.plot(xs, ys, marker="o", label=name)
        axes.set_xlabel("training step")
        axes.set_ylabel(metric)
        axes.set_title(f"{metric} vs training step")
        axes.grid(alpha=0.3)
        if len(series) > 1:
            axes.legend(fontsize="small")


def _count_axes(figure, rows: list[dict[str, Any]]) -> None:
    names = [r.get("job_dir") or str(r["job"]) for r in rows]
    colors = [_OK if r["status"] == COMPLETE else _FAILED for r in rows]
    for i, (key, label) in enumerate(
        [("num_predictions", "predictions"), ("predictions_per_s", "predictions / s (whole job)")]
    ):
        axes = figure.add_subplot(1, 2, i + 1)
        axes.bar(range(len(rows)), [r.get(key) or 0 for r in rows], color=colors)
        axes.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize="small")
        axes.set_ylabel(label)
        axes.set_title(f"{label} per job (red: not complete)")


def render(rows: list[dict[str, Any]]) -> bytes:
    """The summary plot of ``rows`` (from :func:`litpredict.sweep.summary.collect`) as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = sorted(
        {
            k
            for r in rows
            if r["status"] == COMPLETE and r.get("step") is not None
            for k in r["metrics"]
        }
    )
    figure = Figure(figsize=(5.5 * max(len(metrics), 2), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    if metrics:
        _metric_axes(figure, rows, metrics)
    else:
        _count_axes(figure, rows)
    done = sum(r["status"] == COMPLETE for r in rows)
    figure.suptitle(f"{done} of {len(rows)} jobs complete")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
