"""The local engine from 1,000 to 100,000 tasks: first run, no-op rerun and ``b2box status``, with peak memory.

The workflow is the seed's average workflow (benchmarks/average_workflow.py: one ``Average`` requiring N ``Number``
tasks made with ``clone``, one worker), the same script under b2box and, up to ``--b2luigi-max`` tasks (its
scheduler is quadratic), under b2luigi 1.3.0, in the same run. Each size gets a fresh result folder: the first run
makes N files (and keeps its complete graph), the no-op rerun finds them all (from the kept graph), ``status``
reports them, and the no-op rerun with ``keep_graph = false`` builds the graph as every rerun did before
(b2box.engine.kept_graph). The first run is compared with what this
disk takes, in the same run, to make a folder and a file per task (the floor: on a virtual machine's disk it varies
by several times from hour to hour). The issue's goals are printed beside the figures at 100,000 tasks. Results go
to benchmarks/results/local_scaling.json, and the curve to benchmarks/results/local_scaling.html (plotly, the
``report`` extra) and, where headless Chromium is, its picture docs/images/local_scaling.png, which docs/speed.md
shows. ``--folder`` puts every run's results (and the floor's files) in another folder: on a memory file system
(/dev/shm) what is left is the CPU's part, which the disk hides; ``--name`` keeps those figures apart.

    python benchmarks/local_scaling.py                          # 1k ... 100k, b2luigi up to 3k
    python benchmarks/local_scaling.py --sizes 1000 10000 --repeat 3
    python benchmarks/local_scaling.py --folder /dev/shm --name local_scaling_memory
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import HERE, RESULTS, b2luigi_python, measured, write_results

SCRIPT = HERE / "average_workflow.py"
PICTURES = HERE.parent / "docs" / "images"
GOALS = {"first_s": 10.0, "noop_s": 1.0, "status_s": 1.0, "peak_mb": 300.0}  # at 100,000 tasks (issue 27)
STEPS = ("first", "noop", "status", "built")
LABELS = {"first": "first run", "noop": "no-op rerun", "status": "status", "built": "no-op rerun, graph built"}


def file_floor(size: int, where: str | None) -> float:
    """Seconds this disk takes for the least a first run must do: a folder per task and one file in it, written
    under a temporary name and renamed into place (the baseline the first run is compared with, same run)."""
    folder = tempfile.mkdtemp(prefix="b2box-floor-", dir=where)
    os.sync()
    started = time.perf_counter()
    for index in range(size):
        task_folder = os.path.join(folder, f"index={index}")
        os.mkdir(task_folder)
        partial = os.path.join(task_folder, ".partial-number.txt")
        with open(partial, "w") as handle:
            handle.write(f"{index}\n")
        os.replace(partial, os.path.join(task_folder, "number.txt"))
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return elapsed


def steps(python: str, implementation: str, size: int, repeat: int, where: str | None) -> dict[str, Any]:
    """One implementation at one size: each step's median seconds (of ``repeat`` runs; one first run) and peak MB,
    its results in a new folder in ``where`` (None: the system's temporary folder)."""
    results = tempfile.mkdtemp(prefix="b2box-scaling-", dir=where)
    env = {**os.environ, "BENCH_IMPL": implementation, "BENCH_N": str(size), "BENCH_RESULTS": results}
    commands = {"first": [python, str(SCRIPT)], "noop": [python, str(SCRIPT)]}
    if implementation == "b2box":
        commands["status"] = [python, "-m", "b2box", "status", str(SCRIPT)]
        commands["built"] = [python, str(SCRIPT)]  # the no-op rerun with its graph built (keep_graph = false)
    row: dict[str, Any] = {}
    try:
        for step, command in commands.items():
            if step == "first":
                os.sync()  # the last step's files are on disk: no write-back competes with this run
            step_env = {**env, "B2BOX_KEEP_GRAPH": "false"} if step == "built" else env
            runs = [measured(command, step_env, results) for _ in range(1 if step == "first" else repeat)]
            row[f"{step}_s"] = statistics.median(seconds for seconds, _ in runs)
            row[f"{step}_peak_mb"] = max(peak for _, peak in runs)
    finally:
        shutil.rmtree(results, ignore_errors=True)
    return row


def draw(rows: list[dict[str, Any]], name: str, file_system: str) -> Path | None:
    """The curve, seconds against tasks on log scales, as a self-contained page (None without plotly)."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        return None
    figure = go.Figure()
    styles = {"first": "solid", "noop": "dash", "status": "dot", "built": "dashdot"}
    for implementation, colour in (("b2box", "#4c78a8"), ("b2luigi", "#e45756")):
        for step in STEPS:
            points = [(row["tasks"], row[implementation][f"{step}_s"]) for row in rows
                      if f"{step}_s" in row.get(implementation, {})]  # fmt: skip
            if points:
                figure.add_scatter(
                    x=[tasks for tasks, _ in points],
                    y=[seconds for _, seconds in points],
                    name=f"{implementation}: {LABELS[step]}",
                    mode="lines+markers",
                    line={"color": colour, "dash": styles[step]},
                )
    floor = {"color": "#9d9d9d", "dash": "dot"}
    figure.add_scatter(x=[row["tasks"] for row in rows], y=[row["file_floor_s"] for row in rows], mode="lines",
                       name=f"this file system ({file_system}): a folder and a file per task", line=floor)  # fmt: skip
    figure.add_scatter(x=[100_000], y=[GOALS["first_s"]], name="goal: first run", mode="markers",
                       marker={"symbol": "star", "size": 14, "color": "#54a24b"})  # fmt: skip
    figure.add_scatter(x=[100_000], y=[GOALS["noop_s"]], name="goal: no-op rerun, status", mode="markers",
                       marker={"symbol": "star-open", "size": 14, "color": "#54a24b"})  # fmt: skip
    figure.update_xaxes(type="log", title_text="tasks")
    figure.update_yaxes(type="log", title_text="seconds (wall)")
    figure.update_layout(title="Local engine: average workflow, one worker", template="plotly_white",
                         width=900, height=560, margin={"t": 60})  # fmt: skip
    page = RESULTS / f"{name}.html"
    figure.write_html(page, include_plotlyjs=True, full_html=True, config={"displayModeBar": False})
    return page


def photograph(page: Path) -> Path | None:
    """The page as headless Chromium draws it, for the docs (None where there is no Chromium)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    picture = PICTURES / f"{page.stem}.png"
    options = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=920,580"]
    command = [chromium, *options, "--virtual-time-budget=5000", f"--screenshot={picture}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    return picture if done.returncode == 0 and picture.exists() else None


def file_system(folder: str | None) -> str:
    """The type of the file system ``folder`` is on (ext4, tmpfs...), as ``stat`` says it."""
    where = folder or tempfile.gettempdir()
    done = subprocess.run(["stat", "-f", "-c", "%T", where], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 30000, 100000])
    parser.add_argument("--b2luigi-max", type=int, default=3000, help="largest N to run with b2luigi")
    parser.add_argument("--no-b2luigi", action="store_true", help="measure b2box only")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the no-op rerun and status; medians count")
    parser.add_argument("--folder", help="where the runs write (default: the system's temporary folder)")
    parser.add_argument("--name", default="local_scaling", help="of the results file, page and picture")
    options = parser.parse_args()

    reference = None if options.no_b2luigi else b2luigi_python()
    rows = []
    for size in options.sizes:
        row: dict[str, Any] = {"tasks": size, "file_floor_s": file_floor(size, options.folder)}
        row["b2box"] = steps(sys.executable, "b2box", size, options.repeat, options.folder)
        row["first_run_vs_floor"] = row["b2box"]["first_s"] / row["file_floor_s"]
        if reference and size <= options.b2luigi_max:
            row["b2luigi"] = steps(reference, "b2luigi", size, options.repeat, options.folder)
            row["first_run_ratio"] = row["b2luigi"]["first_s"] / row["b2box"]["first_s"]
        rows.append(row)
        ours = row["b2box"]
        line = (f"N={size:>6}  floor {row['file_floor_s']:6.2f} s  b2box: first {ours['first_s']:7.2f} s "
                f"({row['first_run_vs_floor']:.1f}x the floor, {ours['first_peak_mb']:4.0f} MB)  "
                f"no-op {ours['noop_s']:6.2f} s ({ours['noop_peak_mb']:4.0f} MB)  "
                f"status {ours['status_s']:6.2f} s ({ours['status_peak_mb']:4.0f} MB)  "
                f"no-op with the graph built {ours['built_s']:6.2f} s ({ours['built_peak_mb']:4.0f} MB)")  # fmt: skip
        if "b2luigi" in row:
            theirs = row["b2luigi"]
            line += (f"   b2luigi: first {theirs['first_s']:7.2f} s, no-op {theirs['noop_s']:6.2f} s  "
                     f"(first run {row['first_run_ratio']:.1f}x b2box's)")  # fmt: skip
        print(line, flush=True)
    largest = rows[-1]
    if largest["tasks"] == 100_000:
        ours = largest["b2box"]
        peak = max(ours[f"{step}_peak_mb"] for step in ("first", "noop", "status"))
        print(f"goals at 100,000 tasks: first run {ours['first_s']:.1f} s (goal {GOALS['first_s']:.0f}), no-op "
              f"{ours['noop_s']:.2f} s and status {ours['status_s']:.2f} s (goal {GOALS['noop_s']:.0f}), peak "
              f"{peak:.0f} MB (goal {GOALS['peak_mb']:.0f})")  # fmt: skip
    where = {"folder": options.folder or tempfile.gettempdir(), "file_system": file_system(options.folder)}
    path = write_results(options.name, {"workflow": SCRIPT.name, **where, "rows": rows, "goals_at_100000": GOALS})
    print(f"results written to {path}")
    page = draw(rows, options.name, where["file_system"])
    picture = photograph(page) if page else None
    print(f"curve: {page or 'not drawn (no plotly: pip install b2box[report])'}; picture: {picture or 'none'}")


if __name__ == "__main__":
    main()
