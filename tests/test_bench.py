"""scripts/bench.py --quick runs every approach end to end and reports them side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# litpredict-no-commits: litpredict beside itself without its periodic commits (issue 23)
APPROACHES = ("floor", "floor-load", "article", "litpredict", "litpredict-no-commits")
IMAGE_APPROACHES = ("torchvision", "decode-floor", "litpredict-exact", "litpredict-fast")
IMPORTS = "imports alone: torch, pytorch_lightning, hydra"  # bench/startup.py's rows
DEMO_RUN = "predict, linear demo (2048 rows), end to end"


@pytest.mark.slow
def test_quick_bench_reports_every_approach(tmp_path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=360,  # linear ~60 s, images ~60 s, start-up: quiet; twice that with load
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {row["approach"]: row for row in report["rows"] if row["workload"] == "linear"}
    assert set(APPROACHES) <= set(rows)
    for approach in APPROACHES:
        assert f"| {approach} |" in report["table"]
        assert rows[approach]["small"]["work_s"] > 0 and rows[approach]["large"]["peak_mb"] > 0
    startup = report["startup"]
    assert {"predict --help", "predict --cfg job", IMPORTS, DEMO_RUN} <= set(startup)
    assert startup[DEMO_RUN] > startup["predict --cfg job"]  # a whole run, torch imported
    assert any(t["target"].startswith("linear: time/row") for t in report["targets"])
    # The image section: 4 and 12 JPEGs through each approach, side by side.
    images = {row["approach"]: row for row in report["rows"] if row["workload"] == "images"}
    assert set(images) == set(IMAGE_APPROACHES)
    for approach in IMAGE_APPROACHES:
        assert f"| {approach} |" in report["table"]
        assert images[approach]["small"]["work_s"] > 0 and images[approach]["large"]["cpu_s"] > 0
    assert report["images"]["decode_check"]["images"] == 4  # the first batch, checked
    assert report["images"]["agreement"]["litpredict-exact"] == 1.0
    targets = {t["target"].split(" (")[0] for t in report["targets"]}
    assert {
        "images: exact ms/image ÷ torchvision's",
        "images: torchvision ms/image ÷ fast's",
        "images: fast ms/image ÷ decode floor's",
        "images: fast's predictions = exact's",
    } <= targets
    assert any(t["target"] == "linear: time/row ÷ without commits" for t in report["targets"])
