"""The documentation holds: every relative link resolves, the README stays a front door,
and the README's five-minute tour runs as written."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_LINES = 300

FENCE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
TOUR = re.compile(
    r"^<!-- tour -->[ \t]*\n+```bash[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)


def _prose(text: str) -> str:
    """``text`` without code: fenced blocks and inline code spans hold no links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered as GitHub does."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    targets = LINK.findall(_prose(path.read_text()))
    return [t for t in targets if not re.match(r"(?i)(https?|mailto):", t)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            broken.append(f"{link}: no such file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading with the anchor #{anchor} in {file.name}")
    return broken


def test_the_link_checker_finds_broken_links(tmp_path) -> None:
    (tmp_path / "b.md").write_text("# Title\n\n## Where outputs go\n")
    page = tmp_path / "a.md"
    page.write_text(
        "# A `x.py` page\n[ok](b.md#where-outputs-go) [self](#a-xpy-page) [web](https://x.y/z)\n"
        "[gone](missing.md) [bad anchor](b.md#nowhere) `[code](nope.md)`\n"
        "```\n[in a block](nope.md)\n```\n"
    )
    assert broken_links(page) == [
        f"missing.md: no such file {tmp_path / 'missing.md'}",
        "b.md#nowhere: no heading with the anchor #nowhere in b.md",
    ]
    assert slug("Multi-GPU, DDP and `scaling out`") == "multi-gpu-ddp-and-scaling-out"
    assert slug("What happens when...") == "what-happens-when"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert relative_links(page) or page == README, f"{page} links nowhere"
    assert not broken_links(page)


def test_every_guide_page_is_in_the_index_and_links_back() -> None:
    index = {link.partition("#")[0] for link in relative_links(REPO / "docs" / "README.md")}
    for page in PAGES[1:]:
        if page.name != "README.md":
            assert page.name in index, f"docs/README.md does not list {page.name}"
        assert "../README.md" in relative_links(page), f"{page.name} does not link the README"


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def tour_commands() -> str:
    """The README's tour: the ```bash block after ``<!-- tour -->``, without activating a
    venv (the test puts the venv first on PATH instead)."""
    found = TOUR.search(README.read_text())
    assert found, "README.md has no ```bash block after <!-- tour -->"
    lines = found.group(1).splitlines()
    activate = re.compile(r"^\s*(\.|source)\s+\S*\.venv/bin/activate\s*$")
    assert any(activate.match(line) for line in lines), "the tour should activate .venv first"
    return "\n".join(line for line in lines if not activate.match(line)) + "\n"


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """``script`` under ``set -euo pipefail`` in ``cwd``, this venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LITPREDICT_OUTPUTS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_failing_command_fails_the_tour(tmp_path) -> None:
    assert tour_commands().count("python -m litpredict.") >= 4
    result = run_bash("python -m litpredict.predict no_such_key=1\necho not reached\n", tmp_path)
    assert result.returncode != 0 and "not reached" not in result.stdout


@pytest.mark.slow
def test_the_readme_tour_runs_from_any_directory(tmp_path) -> None:
    result = run_bash(tour_commands(), tmp_path)
    assert result.returncode == 0, (
        f"the tour exited {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n"
        f"--- stderr ---\n{result.stderr[-4000:]}"
    )
    tour = tmp_path / "outputs" / "tour"

    def manifest(run_dir: str) -> dict:
        return json.loads((tour / run_dir / "manifest.json").read_text())

    predicted = manifest("predict")
    assert predicted["status"] == "complete" and predicted["num_predictions"] == 2048
    assert (tour / "predict" / "predictions.npy").is_file()
    assert manifest("reproduce")["status"] == "complete"

    epochs = sorted(p.stem for p in (tour / "train" / "checkpoints").glob("epoch=*.ckpt"))
    assert len(epochs) == 3
    with open(tour / "sweep" / "summary.csv", newline="") as summary:
        rows = list(csv.DictReader(summary))
    assert sorted(Path(row["checkpoint"]).stem for row in rows) == epochs
    assert {row["status"] for row in rows} == {"complete"}
    assert "epoch,step,status" in result.stdout  # the summary was printed

    ensemble = manifest("ensemble")
    assert ensemble["status"] == "complete"
    assert len(ensemble["ensemble"]["members"]) == len(epochs)
