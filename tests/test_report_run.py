"""``b2box report`` on a real run: 1,000 batch jobs on this machine with failures (tests/workflows/campaign.py).

The figures are checked against what the campaign is built to do (which jobs fail, which are blocked, what each
requested and touched); the page is opened in headless Chromium, and its screenshot is the one in the docs
(``B2BOX_UPDATE_DOC_IMAGES=1`` copies it to docs/images/report.png).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from b2box.report.style import FAMILY_COLOURS, REQUEST_COLOUR, STATE_COLOURS
from tests.conftest import run_b2box
from tests.screenshots import colours, png_rows, screenshot

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = Path(__file__).parent / "workflows"
MB = 2**20
UPDATE_DOC_IMAGES = os.environ.get("B2BOX_UPDATE_DOC_IMAGES") == "1"  # read now: fixtures clear B2BOX_ variables


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("campaign")
    shutil.copy(WORKFLOWS / "campaign.py", folder)
    (folder / "settings.json").write_text(json.dumps({"batch_system": "local"}))
    done = run_b2box("run", "campaign.py", "--batch", cwd=folder, timeout=600)
    assert done.returncode != 0 and "13 task(s) failed" in done.stdout + done.stderr, done.stdout + done.stderr
    return folder


@pytest.mark.slow
def test_the_report_s_figures_are_what_the_campaign_did(campaign: Path) -> None:
    done = run_b2box("report", "campaign.py", "--json", cwd=campaign)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    # every 97th simulation raises (7), every 50th reconstruction is killed (6); 7 + 12 tasks need them
    assert figures["counts"] == {"done": 968, "complete": 0, "failed": 13, "pending": 0, "blocked": 19}
    assert figures["failures"] == {"exit code 1": 7, "killed by signal SIGKILL": 6}
    families = figures["families"]
    assert families["Simulate"]["request_memory_bytes"] == 128 * MB
    assert families["Reconstruct"]["request_memory_bytes"] == 256 * MB
    # what each touched (4 to 28 MB, 16 to 52 MB) on top of its Python
    assert 28 * MB < families["Simulate"]["peak_rss_bytes"]["max"] < 28 * MB + 150 * MB
    assert 52 * MB < families["Reconstruct"]["peak_rss_bytes"]["max"] < 52 * MB + 150 * MB
    assert families["Simulate"]["wall_s"]["known"] == 600  # failed ones too: their watcher measured them
    jobs = {job["name"]: job for job in figures["jobs"]}
    failed = jobs["Simulate(i=13)"]
    assert failed["state"] == "failed" and "cursed" in failed["log_tail"] and failed["backend"] == "local"
    assert failed["submitted"] <= failed["started"] <= failed["ended"]
    assert jobs["Merge(j=2)"]["state"] == "blocked"
    assert figures["environments"] == [{"environment": "the host (no container)", "tasks": 981}]


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_page_draws_the_timeline_and_the_memory_plot(campaign: Path, chromium: str) -> None:
    done = run_b2box("report", "campaign.py", "-o", "report.html", cwd=campaign)
    assert done.returncode == 0 and "wrote" in done.stdout, done.stderr
    page = (campaign / "report.html").read_text()
    assert "<script src=" not in page and "Simulate(i=13)" in page
    png = screenshot(chromium, campaign / "report.html")
    width, rows = png_rows(png, 1500)
    timeline, families = colours(rows, 150, 900, width), colours(rows, 900, 1500, width)
    for colour in (STATE_COLOURS["done"], STATE_COLOURS["failed"]):
        assert timeline[colour] > 20, f"no {colour} on the timeline: {timeline.most_common(8)}"
    for colour in (*FAMILY_COLOURS[:3], REQUEST_COLOUR):
        assert families[colour] > 5, f"no {colour} in the memory plot: {families.most_common(8)}"
    if UPDATE_DOC_IMAGES:
        shutil.copyfile(png, REPO / "docs" / "images" / "report.png")
