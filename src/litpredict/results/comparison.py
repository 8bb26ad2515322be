"""Two runs' predictions set side by side: agreement of class ids, differences of values.

The samples that changed most are listed by index and id; the result is written as JSON,
CSV and a plot by :func:`write_comparison`. Rows are paired by sample
(:mod:`litpredict.results.pairing`): by id, in run A's order, or refused when the runs
predicted different samples.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from litpredict.process.errors import UserError, filesystem_errors_explained, first_line
from litpredict.results.pairing import SamplesDiffer, row_order, rows
from litpredict.rundir.predictions import RunOutputs

CHUNK_ROWS = 1 << 16
JSON, CSV, PNG = "compare.json", "changed.csv", "compare.png"


class CompareError(UserError):
    """Two runs whose predictions cannot be set side by side."""


def _is_classes(array: np.ndarray) -> bool:
    return bool(np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_)


def check_comparable(a: RunOutputs, b: RunOutputs) -> np.ndarray | None:
    """Refuse runs of other samples or other outputs; which row of B holds each of A's samples
    (None: the same row)."""
    try:
        order = row_order(a, b)
    except SamplesDiffer as error:
        raise CompareError(
            error.problem,
            "compare runs over the same samples (the same data files and split; with ids, "
            "the same ids in any order): predict both on one dataset",
        ) from None
    if a.shapes() != b.shapes():
        shapes = [
            ", ".join(f"{k}: {list(s)} {d}" for k, (s, d) in r.shapes().items()) for r in (a, b)
        ]
        raise CompareError(
            f"{a.run_dir.name} and {b.run_dir.name} differ in outputs ({shapes[0]} vs {shapes[1]})",
            "compare runs of one model on one predict dataset (e.g. two jobs of one sweep)",
        )
    return order


def per_sample(a: np.ndarray, b: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """(N,) float64: 1.0 where a class-id row changed, else the row's max absolute difference.

    ``order``: which row of ``b`` holds each of ``a``'s samples (None: the same row)."""
    out = np.empty(len(a), dtype=np.float64)
    for start in range(0, len(a), CHUNK_ROWS):
        x = np.asarray(a[start : start + CHUNK_ROWS]).reshape(-1, int(np.prod(a.shape[1:])))
        y = rows(b, order, start, start + CHUNK_ROWS).reshape(x.shape)
        if _is_classes(a):
            out[start : start + len(x)] = (x != y).any(axis=1)
        else:
            diff = np.abs(x.astype(np.float64) - y)
            out[start : start + len(x)] = diff.max(axis=1, initial=0)
    return out


def key_summary(
    a: np.ndarray, b: np.ndarray, changes: np.ndarray, order: np.ndarray | None = None
) -> dict[str, float]:
    """Agreement for class ids; max / mean absolute difference (and argmax agreement) else."""
    if _is_classes(a):
        return {"agreement": float(1 - changes.mean())}
    total, argmax_same = 0.0, 0
    for start in range(0, len(a), CHUNK_ROWS):
        x = np.asarray(a[start : start + CHUNK_ROWS], dtype=np.float64)
        y = rows(b, order, start, start + CHUNK_ROWS).astype(np.float64)
        total += float(np.abs(x - y).sum())
        if a.ndim == 2 and a.shape[1] > 1:
            argmax_same += int((x.argmax(axis=1) == y.argmax(axis=1)).sum())
    summary = {"max_abs_diff": float(changes.max()), "mean_abs_diff": total / a.size}
    if a.ndim == 2 and a.shape[1] > 1:
        summary["argmax_agreement"] = argmax_same / len(a)
    return summary


def headline(a: RunOutputs, b: RunOutputs) -> tuple[str, float]:
    """One number for the first output: ``("agreement", x)`` or ``("mean_abs_diff", x)``.

    Raises :class:`CompareError` for runs of other samples or outputs."""
    order = check_comparable(a, b)
    key = next(iter(a.arrays))
    x, y = a.arrays[key], b.arrays[key]
    summary = key_summary(x, y, per_sample(x, y, order), order)
    name = "agreement" if "agreement" in summary else "mean_abs_diff"
    return name, summary[name]


def compare(a: RunOutputs, b: RunOutputs, top: int = 10) -> dict[str, Any]:
    """Every output's summary, and the ``top`` samples that changed most (first output).

    Indices are run A's; B's rows are paired with them by sample."""
    pairing = check_comparable(a, b)
    outputs, changed = {}, []
    for n, key in enumerate(a.arrays):
        x, y = a.arrays[key], b.arrays[key]
        changes = per_sample(x, y, pairing)
        outputs[key] = key_summary(x, y, changes, pairing)
        if n:
            continue
        order = np.argsort(-changes, kind="stable")[:top]
        for index in (int(i) for i in order if changes[i] > 0):
            row: dict[str, Any] = {"index": index, "id": a.ids[index] if a.ids else None}
            other = index if pairing is None else int(pairing[index])
            row.update(a=np.asarray(x[index]).tolist(), b=np.asarray(y[other]).tolist())
            if not _is_classes(x):
                row["max_abs_diff"] = float(changes[index])
            changed.append(row)
    return {
        "run_a": str(a.run_dir.resolve()),
        "run_b": str(b.run_dir.resolve()),
        "num_predictions": a.num_predictions,
        "paired_by": "position" if pairing is None else "id",
        "outputs": outputs,
        "changed_most": changed,
    }


def _csv(rows: list[dict[str, Any]]) -> str:
    text = io.StringIO()
    columns = ["index", "id", "a", "b", "max_abs_diff"]
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return text.getvalue()


def render(a: RunOutputs, b: RunOutputs) -> bytes:
    """PNG: class ids A vs B as a confusion matrix; real values as B against A and a
    histogram of each sample's largest absolute difference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = check_comparable(a, b)
    key = next(iter(a.arrays))
    x, y = a.arrays[key], b.arrays[key]
    if order is not None:  # B's rows in A's sample order (a copy: the plot reads it whole)
        y = np.asarray(y[order])
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    if _is_classes(x):
        flat_x, flat_y = np.asarray(x).ravel(), np.asarray(y).ravel()
        classes = np.union1d(np.unique(flat_x), np.unique(flat_y))
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(matrix, (np.searchsorted(classes, flat_x), np.searchsorted(classes, flat_y)), 1)
        axes = figure.add_subplot(1, 1, 1)
        image = axes.imshow(matrix, cmap="viridis")
        figure.colorbar(image, ax=axes, label="samples")
        axes.set(xlabel=f"{b.run_dir.name} class", ylabel=f"{a.run_dir.name} class")
        if len(classes) <= 20:
            axes.set_xticks(range(len(classes)), [str(c) for c in classes])
            axes.set_yticks(range(len(classes)), [str(c) for c in classes])
    else:
        pick = np.linspace(0, len(x) - 1, min(len(x), 5000)).astype(np.int64)
        first_x = np.asarray(x[pick]).reshape(len(pick), -1)[:, 0]
        first_y = np.asarray(y[pick]).reshape(len(pick), -1)[:, 0]
        scatter = figure.add_subplot(1, 2, 1)
        scatter.scatter(first_x, first_y, s=4, alpha=0.5)
        scatter.set(xlabel=a.run_dir.name, ylabel=b.run_dir.name, title=f"{key} (first element)")
        histogram = figure.add_subplot(1, 2, 2)
        histogram.hist(per_sample(x, y), bins=50)
        histogram.set(xlabel="max |A - B| per sample", ylabel="samples")
    figure.suptitle(f"{a.run_dir.name} vs {b.run_dir.name}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


@filesystem_errors_explained  # a full disk or a read-only --out: a message, not a traceback
def write_comparison(a: RunOutputs, b: RunOutputs, out: Path, top: int = 10) -> dict[str, Any]:
    """Compare ``a`` and ``b`` and write the result into the folder ``out``, with a manifest.

    ``out`` follows the ownership rule (:func:`~litpredict.rundir.ownership.check_output`):
    a new or empty folder, or a comparison of its own, which is computed again and replaced
    (a failed or interrupted one too); never a user's folder, another command's run, or a
    folder in or around run A or B. Nothing is written before the comparison is computed.
    """
    from litpredict.rundir import provenance
    from litpredict.rundir.files import atomic_write, write_json
    from litpredict.rundir.hashing import sha256_file
    from litpredict.rundir.manifest import COMPLETE, Manifest, end_status
    from litpredict.rundir.ownership import COMPARE, clear_attempt, owned_output

    result = compare(a, b, top)
    with owned_output(out, COMPARE, [a.run_dir, b.run_dir]) as earlier:
        if earlier is not None:
            clear_attempt(out, earlier)
        manifest = Manifest(out)
        manifest.start(
            kind=COMPARE,
            comparison={"run_a": result["run_a"], "run_b": result["run_b"]},
            git=provenance.git_state(),
            versions=provenance.versions(),
            **provenance.host(),
            **({"redone_after": earlier.get("status")} if earlier else {}),
        )
        try:
            write_json(out / JSON, result)
            atomic_write(out / CSV, _csv(result["changed_most"]))
            atomic_write(out / PNG, render(a, b))
            outputs = [
                {
                    "path": name,
                    "sha256": sha256_file(out / name),
                    "bytes": (out / name).stat().st_size,
                }
                for name in (JSON, CSV, PNG)
            ]
        except BaseException as error:
            manifest.finish(end_status(error), error=first_line(error))
            raise
        manifest.finish(COMPLETE, outputs=outputs, num_predictions=result["num_predictions"])
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['run_a']} vs {result['run_b']}: {result['num_predictions']} samples"]
    if result.get("paired_by") == "id":
        lines.append("  (the runs list their samples in another order: paired by id)")
    for key, summary in result["outputs"].items():
        lines.append(f"  {key}: " + ", ".join(f"{k}={v:.6g}" for k, v in summary.items()))
    if result["changed_most"]:
        lines.append("  changed most:")
    for row in result["changed_most"]:
        name = f"{row['index']}" + (f" ({row['id']})" if row["id"] is not None else "")
        extra = f"  max_abs_diff={row['max_abs_diff']:.6g}" if "max_abs_diff" in row else ""
        lines.append(f"    {name}: {row['a']} -> {row['b']}{extra}")
    return "\n".join(lines)
