"""b2box against b2luigi 1.3.0 on a real HTCondor pool or Slurm cluster, or on the LSF stand-in (on the worker node).

For each size, b2box runs N trivial tasks, each in Apptainer, and reports: wall time, the pool's own busy
time (first job start to last job end, from the jobs' own records), b2box's lag beyond the pool (wall time
after the last job ended), and the number of submit calls and status queries. With --tasks-per-job K the
same is measured with K tasks per batch job. b2luigi 1.3.0 runs the same tasks (without a container, its
best case) for the sizes up to --b2luigi-max, beside b2box without a container ("b2box bare"). Results:
printed, and written to benchmarks/results/batch_<system>.json.

With --system lsf the jobs go to the LSF stand-in of tests/standins/lsf (LSF itself cannot be installed here):
both implementations talk to the same bsub/bjobs/bkill, which run the jobs on the worker node with 4 slots, like
the pool, and count every call, so the rows also give bsub and bjobs calls.

    python3 ci/testbed.py up; then on the worker node (see README):
    python benchmarks/batch_systems.py --system htcondor --sif /path/analysis.sif --sizes 100 500
"""

from __future__ import annotations

import argparse
import datetime
import glob
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

from common import HERE, write_results

WORKFLOW = HERE / "batch_workflow.py"
LSF_STANDIN = Path(os.environ.get("LSF_STANDIN", HERE.parent / "tests" / "standins" / "lsf"))
STUBS = HERE / "reference_stubs"


def _timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_once(
    python: str,
    implementation: str,
    system: str,
    count: int,
    settings: dict[str, Any],
    base: str,
    extra_env: dict[str, str] | None = None,
    standin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run of ``count`` tasks; ``standin`` adds to the LSF stand-in's config.json (with ``instant`` its jobs end
    DONE when submitted, without running: what is measured is the submitter, every job judged as one that left
    no exit record)."""
    instant = bool((standin or {}).get("instant"))
    folder = Path(tempfile.mkdtemp(prefix=f"{implementation}-{system}-{count}-", dir=base))
    # Batch jobs run the script again in a clean environment: the implementation is written into the file.
    # (b2luigi's jobs also rebuild the whole task graph, so the size and system go in as well).
    text = WORKFLOW.read_text()
    for name, default, value in (
        ("BENCH_IMPL", "b2box", implementation),
        ("BENCH_N", "0", str(count)),
        ("BENCH_SYSTEM", "local", system),
    ):
        text = text.replace(f'os.environ.get("{name}", "{default}")', f'os.environ.get("{name}", "{value}")')
    (folder / "workflow.py").write_text(text)
    (folder / "settings.json").write_text(json.dumps({"result_dir": "results", **settings}))
    stats_file = folder / "stats.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("B2BOX_", "B2LUIGI_"))}
    env.update(
        BENCH_IMPL=implementation,
        BENCH_N=str(count),
        BENCH_SYSTEM=system,
        BENCH_STATS=str(stats_file),
        **(extra_env or {}),
    )
    if system == "lsf":
        state = folder / "lsf-state"
        state.mkdir()
        (state / "config.json").write_text(json.dumps({"queue_delay": 0.5, "slots": 4, **(standin or {})}))
        env.update(PATH=f"{LSF_STANDIN / 'bin'}:{env['PATH']}", LSF_STANDIN_DIR=str(state))
    started = time.time()
    done = subprocess.run([python, "workflow.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=7200)
    finished = time.time()
    outputs = glob.glob(str(folder / "results" / "index=*" / "done.txt"))
    row: dict[str, Any] = {"implementation": implementation, "tasks": count, "wall_s": finished - started}
    if system == "lsf":
        calls = (folder / "lsf-state" / "calls.log").read_text().split()
        row.update(bsub_calls=calls.count("bsub"), bjobs_calls=calls.count("bjobs"))
    if instant:
        return _instant_row(row, folder, finished, done, stats_file)
    if len(outputs) != count:
        if implementation == "b2luigi":  # recorded, not fatal: what b2luigi could not do is a result too
            row.update(error=f"{len(outputs)} of {count} outputs: {done.stderr.strip()[-1500:]}")
            shutil.rmtree(folder, ignore_errors=True)
            return row
        raise RuntimeError(f"{implementation}: {len(outputs)} of {count} outputs\n{done.stderr[-3000:]}")
    records = [
        json.loads(Path(p).read_text()) for p in glob.glob(str(folder / "logs/**/provenance.json"), recursive=True)
    ]
    if records:  # the submissions, from the jobs' ids: 123_4 (Slurm), 123.4 (HTCondor), 123[4] (LSF)
        row["arrays"] = len({re.split(r"[_.\[]", str(r.get("job_id", "")))[0] for r in records})
        first_start = min(_timestamp(r["start_time"]) for r in records)
        last_end = max(_timestamp(r["end_time"]) for r in records)
    else:
        first_start = min(os.path.getmtime(p) for p in outputs)
        last_end = max(os.path.getmtime(p) for p in outputs)
    row.update(
        pool_busy_s=last_end - first_start,
        lag_after_last_job_s=finished - last_end,
        submission_to_last_job_s=last_end - started,
    )
    if stats_file.exists():
        row.update(json.loads(stats_file.read_text()))
    shutil.rmtree(folder, ignore_errors=True)
    return row


def _instant_row(
    row: dict[str, Any], folder: Path, finished: float, done: subprocess.CompletedProcess[str], stats_file: Path
) -> dict[str, Any]:
    """A run against jobs that ended when submitted: the last job's end is the stand-in's last submission."""
    ends = [
        element["finish"]
        for path in (folder / "lsf-state" / "jobs").glob("*.json")
        for element in json.loads(path.read_text())["elements"].values()
    ]
    jobs_judged = len(ends)
    if jobs_judged != row["tasks"] or not stats_file.exists():
        raise RuntimeError(f"{jobs_judged} of {row['tasks']} jobs submitted\n{done.stderr[-3000:]}")
    row.update(
        jobs_ended=jobs_judged, lag_after_last_job_s=finished - max(ends), printed_lines=len(done.stderr.splitlines())
    )
    row.update(json.loads(stats_file.read_text()))
    shutil.rmtree(folder, ignore_errors=True)
    return row


def b2luigi_python(base: str) -> str:
    """b2luigi 1.3.0 in its own venv, from a wheelhouse (B2LUIGI_WHEELS) since the worker node has no network."""
    venv = Path(base) / "b2luigi-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        wheels = os.environ["B2LUIGI_WHEELS"]
        install = [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels]
        subprocess.run([*install, "--no-deps", "b2luigi==1.3.0"], check=True)
        # b2luigi's requirements except xrootd, which has no wheel for this Python (see reference_stubs/)
        subprocess.run(
            [
                *install,
                "luigi==3.6.0",
                "parse>=1.8.4",
                "colorama>=0.3.9",
                "cachetools>=5.0.0",
                "tenacity>=8,<9",
                "webdavclient3>=3.14.7",
                "typer>=0.12.0",
                "shellingham>=1.5",
                "click>=8.0.0",
                "setuptools<81",
            ],
            check=True,
        )
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        shutil.copytree(STUBS / "XRootD", Path(site) / "XRootD")
    return str(python)


def record(rows: list[dict[str, Any]], system: str, sif: str) -> Path:
    """Write the rows measured so far (a long run that breaks keeps what it measured)."""
    return write_results(f"batch_{system}", {"rows": rows, "sif": sif})


def describe(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['implementation']:>10} N={row['tasks']:>4}: FAILED after {row['wall_s']:.1f} s: {row['error']}"
    calls = f", {row['submit_calls']} submits, {row['status_queries']} status queries" if "submit_calls" in row else ""
    if "bsub_calls" in row:
        calls += f" ({row['bsub_calls']} bsub, {row['bjobs_calls']} bjobs)"
    return (
        f"{row['implementation']:>10} N={row['tasks']:>4}: {row['wall_s']:7.1f} s wall, pool busy "
        f"{row['pool_busy_s']:6.1f} s, done {row['lag_after_last_job_s']:5.1f} s after the last job{calls}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=["htcondor", "slurm", "lsf"], required=True)
    parser.add_argument("--sif", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--tasks-per-job", type=int, default=10)
    parser.add_argument("--b2luigi-max", type=int, default=100, help="0 skips b2luigi")
    parser.add_argument("--folder", default=os.getcwd(), help="a folder on the shared filesystem")
    parser.add_argument(
        "--reuse-b2box",
        action="store_true",
        help="take b2box's rows from the last results file instead of measuring them again",
    )
    options = parser.parse_args()
    rows = []
    settings = {"image": options.sif, "batch_poll_interval": 1.0}
    if options.reuse_b2box:
        previous = json.loads((HERE / "results" / f"batch_{options.system}.json").read_text())
        rows = [row for row in previous["rows"] if row["implementation"].startswith("b2box")]
        options.sizes, options.tasks_per_job = [], 1
    for count in options.sizes:
        rows.append(run_once(sys.executable, "b2box", options.system, count, settings, options.folder))
        print(describe(rows[-1]), flush=True)
        record(rows, options.system, options.sif)
    if options.tasks_per_job > 1:
        for count in options.sizes:
            row = run_once(
                sys.executable,
                "b2box",
                options.system,
                count,
                {**settings, "tasks_per_job": options.tasks_per_job},
                options.folder,
            )
            row["implementation"] = f"b2box x{options.tasks_per_job}"
            rows.append(row)
            print(describe(row), flush=True)
            record(rows, options.system, options.sif)
    for count in sorted({row["tasks"] for row in rows if row["tasks"] <= options.b2luigi_max}):
        # b2luigi runs without a container; so does this row, for a like-for-like comparison
        bare = run_once(sys.executable, "b2box", options.system, count, {"batch_poll_interval": 1.0}, options.folder)
        bare["implementation"] = "b2box bare"
        rows.append(bare)
        print(describe(bare), flush=True)
        row = run_once(b2luigi_python(options.folder), "b2luigi", options.system, count, {}, options.folder)
        rows.append(row)
        print(describe(row), flush=True)
        for name in ("b2box", "b2box bare"):
            ours = next(r for r in rows if r["implementation"] == name and r["tasks"] == count)
            if "error" not in row:
                print(f"  {name} reports done {row['wall_s'] / ours['wall_s']:.1f}x sooner than b2luigi on N={count}")
        record(rows, options.system, options.sif)
    print(f"results written to {record(rows, options.system, options.sif)}")


if __name__ == "__main__":
    main()
