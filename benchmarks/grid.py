"""b2box against b2luigi 1.3.0 on the gbasf2 stand-in: 20 grid projects, one of whose jobs is rescheduled.

Both implementations submit the same workflow (grid_workflow.py) to the same stand-in grid (tests/standins/gbasf2,
its jobs run with the basf2 stand-in), each to a fresh copy of it. Recorded per implementation: wall time, the
time from the grid's last job ending to the run's end, the DIRAC status queries and gb2 calls it made, and whether
every downloaded dataset is complete (one file per job) and free of duplicates (never two reschedules of one job).
b2luigi's status cache is five minutes and cannot be changed; b2box's interval is a setting (300 s by default, as
b2luigi; --interval sets the one used here). Results: printed, and written to benchmarks/results/grid.json.

    python benchmarks/grid.py [--projects 20] [--interval 30]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import HERE, b2luigi_python, write_results

STANDINS = HERE.parent / "tests" / "standins"
RELEASE = "release-08-01-00"


def make_grid(folder: Path, projects: int) -> Path:
    home = folder / "grid"
    shutil.copytree(STANDINS / "gbasf2", home, ignore=shutil.ignore_patterns("__pycache__", "state"))
    state = home / "state"
    state.mkdir()
    config = {"basf2_setup": str(STANDINS / "basf2" / "setup_release.sh"), "delay": 0.2, "slots": 4}
    (state / "config.json").write_text(json.dumps(config))
    (state / "proxy.json").write_text(json.dumps({"expires": time.time() + 86400, "group": "belle"}))
    (state / "faults.json").write_text(json.dumps({"fail_after_upload": 1}))  # one job is rescheduled
    for index in range(projects):
        block = state / "se" / "belle" / "MC" / f"ds{index:02d}" / "sub00"
        block.mkdir(parents=True)
        for number in (1, 2):
            (block / f"mdst_{number:06d}_prod1.root").write_text(json.dumps({"standin_root": 1, "events": 100}))
    return home


def last_job_end(state: Path) -> float:
    ends = [job["since"] for path in (state / "projects").glob("*.json")
            for job in json.loads(path.read_text())["jobs"].values()]  # fmt: skip
    return max(ends, default=float("nan"))


def check_datasets(results: Path, projects: int) -> dict[str, Any]:
    complete, duplicates = 0, 0
    for folder in results.glob("dataset=*/ntuple.root"):
        names = [path.name for path in folder.iterdir()] if folder.is_dir() else []
        jobs = collections.Counter(re.sub(r"_\d+\.root$", "", name) for name in names)
        duplicates += sum(count - 1 for count in jobs.values())
        complete += len(jobs) == 2
    return {"datasets_complete": complete, "datasets_expected": projects, "duplicate_files": duplicates}


def run_once(python: str, implementation: str, projects: int, interval: float, base: str) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"grid-{implementation}-", dir=base))
    home = make_grid(folder, projects)
    shutil.copy(HERE / "grid_workflow.py", folder / "workflow.py")
    settings = {"result_dir": "results", "gbasf2_setup_path": str(home / "bashrc"), "gbasf2_max_retries": 1,
                "gbasf2_project_name_prefix": f"{implementation[:6]}x", "gbasf2_status_interval": interval}  # fmt: skip
    (folder / "settings.json").write_text(json.dumps(settings))
    env = {key: value for key, value in os.environ.items() if not key.startswith(("B2BOX_", "B2LUIGI_"))}
    env.update(BENCH_IMPL=implementation, BENCH_N=str(projects), BELLE2_RELEASE=RELEASE,
               PYTHONPATH=str(STANDINS / "basf2" / "python"))  # fmt: skip
    started = time.time()
    done = subprocess.run([python, "workflow.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=7200)
    finished = time.time()
    log = home / "state" / "calls.log"
    calls = collections.Counter(log.read_text().split() if log.exists() else [])
    row: dict[str, Any] = {
        "implementation": implementation,
        "projects": projects,
        "exit_code": done.returncode,
        "wall_s": finished - started,
        "lag_after_last_job_s": finished - last_job_end(home / "state"),
        "dirac_status_queries": calls["dirac_status"],
        "gb2_calls": {name: count for name, count in sorted(calls.items()) if name != "dirac_status"},
        **check_datasets(folder / "results", projects),
    }
    if done.returncode != 0:
        row["error"] = done.stderr.strip()[-1500:]
    shutil.rmtree(folder, ignore_errors=True)
    return row


def describe(row: dict[str, Any]) -> str:
    return (f"{row['implementation']:>8}: {row['wall_s']:6.1f} s wall, done {row['lag_after_last_job_s']:6.1f} s after "
            f"the grid's last job, {row['dirac_status_queries']} status queries, {row['datasets_complete']}/"
            f"{row['datasets_expected']} datasets complete, {row['duplicate_files']} duplicate files, exit "
            f"{row['exit_code']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--interval", type=float, default=30.0, help="b2box's gbasf2_status_interval")
    parser.add_argument("--no-b2luigi", action="store_true")
    options = parser.parse_args()
    base = tempfile.mkdtemp(prefix="b2box-grid-bench-")
    rows = [run_once(sys.executable, "b2box", options.projects, options.interval, base)]
    print(describe(rows[-1]), flush=True)
    if not options.no_b2luigi:
        rows.append(run_once(b2luigi_python(), "b2luigi", options.projects, options.interval, base))
        print(describe(rows[-1]), flush=True)
        ours, theirs = rows
        print(f"b2box was done {theirs['wall_s'] / ours['wall_s']:.1f}x sooner, with "
              f"{ours['dirac_status_queries']} status queries against {theirs['dirac_status_queries']}")  # fmt: skip
    path = write_results("grid", {"rows": rows, "b2box_status_interval_s": options.interval})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
