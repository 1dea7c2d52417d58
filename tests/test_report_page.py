"""The report page from made-up runs: self-contained, escaped, with every section, and it draws in a browser.

The runs are built so their figures are known by hand: in each family a job's wall time and peak memory follow
its index, so the medians and maxima below are arithmetic, not a second implementation of the summary.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from b2box.report.facts import JobFacts, RunFacts
from b2box.report.page import TITLES, render
from tests.screenshots import assert_plots_drawn, screenshot

MB = 2**20
T0 = 1_718_000_000.0
IMAGE = "docker b2box-analysis:1.0 sha256:abcd1234ef567890"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="220" height="40"><text x="4" y="24">Simulate → Merge</text></svg>'
MEMORY_MESSAGE = "used {mb} MB, <b>more</b> than the 2048 MB requested"
SCRIPT_TAIL = "Traceback (most recent call last):\n  <script>alert(1)</script>\nValueError: bad input"


def _job(family: str, i: int, state: str, offset: float, wall: float | None, peak_mb: int | None) -> JobFacts:
    submitted = T0 + offset + (i // 50) * 60
    started = submitted + 5 + (i * 37) % 300
    return JobFacts(
        task_id=f"{family}_{i}",
        family=family,
        name=f"{family}(i={i})",
        state=state,
        submitted=submitted,
        started=started if wall is not None else None,
        ended=started + wall if wall is not None else None,
        wall_s=wall,
        cpu_s=wall * 0.9 if wall is not None else None,
        peak_rss_bytes=peak_mb * MB if peak_mb is not None else None,
    )


def _simulate(i: int) -> JobFacts:
    job = _job("Simulate", i, "done", 0, 100 + i % 100, 200 + i % 50)
    job.backend, job.host, job.request_memory_bytes, job.environment = "htcondor", f"wn{i % 7}", 512 * MB, IMAGE
    return job


def _reconstruct(i: int) -> JobFacts:
    peak = 1500 + 10 * (i % 80)
    job = _job("Reconstruct", i, "failed" if peak > 2048 else "done", 1200, 600 + 2 * (i % 200), peak)
    job.backend, job.host, job.request_memory_bytes, job.environment = "slurm", f"node{i % 5}", 2048 * MB, IMAGE
    if job.state == "failed":
        job.cause, job.message, job.attempts = "memory", MEMORY_MESSAGE.format(mb=peak), 2
        job.accounting = {"MaxRSS_MB": peak}
    return job


def _merge(i: int) -> JobFacts:
    k = i % 100
    if k < 90:  # ran; three failed
        job = _job("Merge", i, "failed" if k % 30 == 7 else "done", 4000, 20 + k, 100 + k)
    else:  # seven still queued, one blocked, two complete from an earlier run
        job = _job("Merge", i, "pending" if k < 97 else "blocked" if k == 97 else "complete", 4000, None, None)
        job.submitted = job.submitted if k < 97 else None
    job.backend, job.environment = "local", "this machine"
    if job.state == "failed":
        job.cause, job.message, job.log_tail, job.log_path = (
            "exit code 1",
            "merge <b>failed</b>",
            SCRIPT_TAIL,
            "/l/m.log",
        )
    return job


def make_facts(scale: int = 1) -> RunFacts:
    """A run of 1,000 jobs times ``scale``: Simulate 500, Reconstruct 400 (a quarter killed for memory), Merge 100."""
    jobs = [_simulate(i) for i in range(500 * scale)]
    jobs += [_reconstruct(i) for i in range(400 * scale)]
    jobs += [_merge(i) for i in range(100 * scale)]
    return RunFacts(script="/home/user/analysis/workflow.py", made=T0 + 5400, jobs=jobs, graph_svg=SVG)


@pytest.fixture(scope="module")
def facts() -> RunFacts:
    return make_facts()


@pytest.fixture(scope="module")
def page(facts: RunFacts) -> str:
    return render(facts)


# ------------------------------------------------------------------------------------------------------ the figures


def test_counts_add_up(facts: RunFacts) -> None:
    # Reconstruct: peak 1500 + 10 * (i % 80) MB exceeds 2048 MB for i % 80 >= 55: 25 of every 80, 125 of 400.
    # Merge: i = 7, 37, 67 failed; 90..96 are queued, 97 is blocked, 98 and 99 were complete before.
    assert facts.counts() == {"done": 500 + 275 + 87, "complete": 2, "failed": 128, "pending": 7, "blocked": 1}


def test_json_has_each_familys_medians_and_maxima(facts: RunFacts) -> None:
    data = json.loads(json.dumps(facts.to_json()))
    simulate, reconstruct, merge = (data["families"][name] for name in ("Simulate", "Reconstruct", "Merge"))
    # Simulate: wall 100 + i % 100 s for 500 jobs, each of 100..199 five times; peak 200 + i % 50 MB.
    assert simulate["count"] == 500
    assert simulate["wall_s"] == {"median": 149.5, "max": 199.0, "known": 500}
    assert simulate["peak_rss_bytes"] == {"median": 224.5 * MB, "max": 249.0 * MB, "known": 500}
    assert simulate["request_memory_bytes"] == 512 * MB
    assert simulate["failures"] == {}
    # Reconstruct: wall 600 + 2 * (i % 200): 600..998; peak 1500..2290 MB in steps of 10.
    assert reconstruct["wall_s"] == {"median": 799.0, "max": 998.0, "known": 400}
    assert reconstruct["peak_rss_bytes"] == {"median": 1895.0 * MB, "max": 2290.0 * MB, "known": 400}
    assert reconstruct["failures"] == {"memory": 125}
    # Merge: only i < 90 ran: wall 20..109 s, peak 100..189 MB; no request known.
    assert merge["wall_s"] == {"median": 64.5, "max": 109.0, "known": 90}
    assert merge["peak_rss_bytes"] == {"median": 144.5 * MB, "max": 189.0 * MB, "known": 90}
    assert merge["request_memory_bytes"] is None
    assert merge["failures"] == {"exit code 1": 3}
    assert merge["states"] == {"done": 87, "failed": 3, "pending": 7, "blocked": 1, "complete": 2}


def test_json_lists_slowest_largest_failures_and_environments(facts: RunFacts) -> None:
    data = facts.to_json()
    assert [job["wall_s"] for job in data["slowest"]] == [998.0, 998.0, 996.0, 996.0, 994.0, 994.0] + [992.0] * 2 + [
        990.0
    ] * 2
    assert {job["family"] for job in data["slowest"]} == {"Reconstruct"}
    assert [job["peak_rss_bytes"] for job in data["largest"]][:5] == [2290 * MB] * 5
    assert data["failures"] == {"memory": 125, "exit code 1": 3}
    assert data["environments"] == [
        {"environment": IMAGE, "tasks": 900},
        {"environment": "this machine", "tasks": 92},
    ]  # (not the 8 that never ran)
    assert len(data["jobs"]) == 1000 and data["jobs"][0]["task_id"] == "Simulate_0"
    json.dumps(data)  # plain JSON types throughout


def test_json_copes_with_odd_accounting_and_an_empty_run() -> None:
    job = JobFacts("t", "F", "F()", "done", accounting={"when": time.gmtime(0), ("a", 1): {1, 2}})
    json.dumps(RunFacts("w.py", T0, [job]).to_json())
    empty = RunFacts("w.py", T0, [])
    assert empty.to_json()["families"] == {} and empty.counts()["done"] == 0
    assert "No job of this run has these figures" in render(empty)


# --------------------------------------------------------------------------------------------------------- the page


def test_page_needs_no_network(page: str) -> None:
    assert "<script src=" not in page.lower()
    assert not re.search(r"<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", page, re.I)
    assert "@import" not in page and "url(" not in page.split("<script>", 1)[0]


def test_plotly_js_is_included_once(page: str) -> None:
    assert page.count("plotly.js v") == 1
    assert page.count("window.PlotlyConfig") == 1
    assert page.count("Plotly.newPlot(") == 2  # the timeline and the families' plot, drawn by the one copy


def test_every_section_is_there(page: str) -> None:
    for title in TITLES.values():
        assert f"<h2>{title}</h2>" in page
    assert "workflow.py" in page.split("<main>", 1)[0]  # the header
    for state, count in (("done", 862), ("complete", 2), ("failed", 128), ("pending", 7), ("blocked", 1)):
        assert re.search(rf'<span class="badge {state}">{count} {state}</span>', page)
    assert SVG in page


def test_a_run_without_graph_has_no_graph_section(facts: RunFacts) -> None:
    assert f"<h2>{TITLES['graph']}</h2>" not in render(RunFacts(facts.script, facts.made, facts.jobs[:20]))


def test_failures_are_grouped_and_escaped(page: str) -> None:
    assert "merge &lt;b&gt;failed&lt;/b&gt;" in page and "merge <b>failed</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert MEMORY_MESSAGE.format(mb=2290).replace("<", "&lt;").replace(">", "&gt;") in page
    failures = page.split(f"<h2>{TITLES['failures']}</h2>", 1)[1].split("</section>", 1)[0]
    assert failures.index("memory: 125 jobs") < failures.index("exit code 1: 3 jobs")
    assert "and 75 more of this cause" in failures  # 50 of 125 memory failures shown


def test_names_reach_plotly_escaped() -> None:
    job = JobFacts("t", "F</script>", "F(x=</script><b>)", "done", submitted=T0, started=T0 + 1, ended=T0 + 5)
    job.wall_s, job.peak_rss_bytes = 4.0, 300 * MB
    page = render(RunFacts("w.py", T0 + 10, [job]))
    assert "</script><b>" not in page
    assert "F(x=&lt;/script&gt;&lt;b&gt;)" in page


def test_memory_is_shown_in_human_units(page: str) -> None:
    largest = page.split(f"<h2>{TITLES['largest']}</h2>", 1)[1].split("</section>", 1)[0]
    assert "2.2 GB" in largest and "2.0 GB" in largest  # 2290 MB peak, 2048 MB requested
    slowest = page.split(f"<h2>{TITLES['slowest']}</h2>", 1)[1].split("</section>", 1)[0]
    assert "16 min 38 s" in slowest  # 998 s


def test_five_thousand_jobs_make_a_page_of_reasonable_size() -> None:
    facts = make_facts(scale=5)
    start = time.perf_counter()
    page = render(facts)
    seconds = time.perf_counter() - start
    plotly_js = page.index("</script>", page.index("plotly.js v")) - page.index("plotly.js v")
    data = len(page.encode()) - plotly_js
    print(f"5,000 jobs: {len(page.encode()):,} bytes ({data:,} without plotly.js), rendered in {seconds:.2f} s")
    assert data < 3_000_000  # the jobs' figures: a few hundred bytes each
    assert seconds < 10
    assert page.count("plotly.js v") == 1 and '"type":"scattergl"' in page


# ----------------------------------------------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_screenshot_shows_the_timeline_and_the_families(tmp_path: Path, chromium: str) -> None:
    assert_plots_drawn(screenshot(chromium, _page_file(make_facts(), tmp_path)))


@pytest.mark.browser
def test_five_thousand_jobs_are_drawn_with_webgl(tmp_path: Path, chromium: str) -> None:
    assert_plots_drawn(screenshot(chromium, _page_file(make_facts(scale=5), tmp_path)))


def _page_file(facts: RunFacts, folder: Path) -> Path:
    page = folder / "report.html"
    page.write_text(render(facts), encoding="utf-8")
    return page
