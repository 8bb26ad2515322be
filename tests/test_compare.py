"""Comparisons of two runs, and the summary's agreement with the last job, by hand."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import run_cli
from litpredict.results.comparison import CompareError, compare, write_comparison
from litpredict.rundir.predictions import read_run
from litpredict.sweep.summary import write_summary
from run_dirs import write_run, write_sweep


def test_class_ids_agreement_and_the_changed_samples(tmp_path):
    a = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    b = np.array([0, 1, 9, 3, 4, 0, 6, 7])
    ids = [f"s{i}" for i in range(8)]
    run_a = read_run(write_run(tmp_path / "a", a, ids=ids))
    run_b = read_run(write_run(tmp_path / "b", b, ids=ids))
    result = write_comparison(run_a, run_b, tmp_path / "out")
    assert result["outputs"]["prediction"] == {"agreement": (a == b).mean()}
    assert [(r["index"], r["id"], r["a"], r["b"]) for r in result["changed_most"]] == [
        (2, "s2", 2, 9),
        (5, "s5", 5, 0),
    ]
    assert json.loads((tmp_path / "out" / "compare.json").read_text())["num_predictions"] == 8
    with open(tmp_path / "out" / "changed.csv", newline="") as file:
        assert [row["index"] for row in csv.DictReader(file)] == ["2", "5"]
    assert (tmp_path / "out" / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_regression_max_and_mean_absolute_difference(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 3)).astype(np.float32)
    b = a + rng.normal(scale=0.1, size=(40, 3)).astype(np.float32)
    run_a, run_b = (read_run(write_run(tmp_path / n, x)) for n, x in (("a", a), ("b", b)))
    result = compare(run_a, run_b, 5)
    diff = np.abs(a.astype(np.float64) - b)
    summary = result["outputs"]["prediction"]
    assert summary["max_abs_diff"] == pytest.approx(diff.max())
    assert summary["mean_abs_diff"] == pytest.approx(diff.mean())
    assert summary["argmax_agreement"] == pytest.approx((a.argmax(1) == b.argmax(1)).mean())
    worst = np.argsort(-diff.max(axis=1), kind="stable")[:5]
    assert [r["index"] for r in result["changed_most"]] == worst.tolist()
    assert result["changed_most"][0]["id"] is None


def test_runs_of_other_shapes_are_refused(tmp_path):
    run_a = read_run(write_run(tmp_path / "a", np.zeros(4)))
    run_b = read_run(write_run(tmp_path / "b", np.zeros(5)))
    with pytest.raises(CompareError, match="differ in outputs"):
        compare(run_a, run_b)


def test_the_summary_gains_each_jobs_agreement_with_the_last(tmp_path):
    last = np.array([1, 1, 1, 1])
    members = [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), last]
    write_sweep(tmp_path / "sweep", members)
    summary = write_summary(tmp_path / "sweep", plot=False)
    assert [row["agreement_with_last"] for row in summary["rows"]] == [
        (m == last).mean() for m in members
    ]
    write_sweep(tmp_path / "reg", [np.zeros(3), np.array([0.0, 1.0, 2.0])])
    summary = write_summary(tmp_path / "reg", plot=False)
    assert [row["mean_abs_diff_with_last"] for row in summary["rows"]] == [1.0, 0.0]


def test_the_command_prints_and_writes_next_to_run_b(tmp_path):
    write_run(tmp_path / "runs" / "a", np.array([0.0, 1.0, 5.0]))
    write_run(tmp_path / "runs" / "b", np.array([0.0, 1.5, 2.0]))
    done = run_cli("compare", "runs/a", "runs/b", cwd=tmp_path)
    assert "max_abs_diff=3" in done.stdout and "mean_abs_diff=1.16667" in done.stdout
    assert (tmp_path / "runs" / "compare_a_vs_b" / "compare.png").is_file()
    refused = run_cli("compare", "runs/a", "runs/none", cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "fix:" in refused.stderr
