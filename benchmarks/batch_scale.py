"""Large batch runs within a small array limit: submit calls, status queries per poll, the submitter's CPU per poll
and peak memory, and how soon after the last job the run is done.

N trivial tasks (benchmarks/batch_workflow.py, no container) go to the LSF stand-in of tests/standins/lsf (4 slots,
its jobs run on this machine) with ``lsf_array_size`` set to the limit, so a wave of N jobs must go out as
ceil(N / limit) arrays. The ``--instant`` sizes (100,000 by default) go to the stand-in in its ``instant`` mode,
whose jobs end DONE the moment they are submitted without running: what is measured there is the submitter alone,
each job judged as one that left no exit record (so each fails, and the failures are one line). With ``--system
slurm`` or ``htcondor`` the jobs go to the testbed's real cluster, whose limits benchmarks/testbed_scale.py sets
small first. Per size it prints and records (benchmarks/results/batch_scale[_system].json):

- submit calls against the goal N / limit + 1, and status queries against b2box's polls (one query per poll);
- the submitter's CPU for its costliest poll (goal: at most 1 s) and its peak RSS (goal: at most 1 GB);
- the wall time after the last job ended (goal: at most one poll interval, 1 s here).

The baseline in the same run is the smallest size: the ratios say how each figure grows with N.

    python benchmarks/batch_scale.py --sizes 500 2000 --instant 100000 --limit 100
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from typing import Any

from batch_systems import run_once
from common import write_results


def measured(system: str, count: int, limit: int, folder: str, instant: bool) -> dict[str, Any]:
    """One run; on LSF the limit is ``lsf_array_size``, on Slurm and HTCondor the cluster's own (set small by
    benchmarks/testbed_scale.py), which b2box finds out."""
    settings: dict[str, Any] = {"batch_poll_interval": 1.0}
    if system == "lsf":
        settings["lsf_array_size"] = limit
    standin = {"instant": True} if instant else None
    python = os.environ.get("PYTHON", sys.executable)
    row = run_once(python, "b2box", system, count, settings, folder, standin=standin)
    row.update(limit=limit, submit_goal=math.ceil(count / limit) + 1, jobs_end="at once" if instant else "run")
    return row


def describe(row: dict[str, Any], base: dict[str, Any]) -> str:
    per_task = row["wall_s"] / row["tasks"] / (base["wall_s"] / base["tasks"])
    submits = row.get("bsub_calls", row.get("arrays", 0))  # the stand-in counts calls; elsewhere the jobs' arrays
    return (
        f"N={row['tasks']:>6} (jobs {row['jobs_end']}): {submits} submissions (goal <= {row['submit_goal']}), "
        f"{row.get('bjobs_calls', row['status_queries'])} status queries for {row['status_queries']} polls; "
        f"costliest poll {row['slowest_poll_cpu_s']:.3f} s CPU (goal <= 1 s); "
        f"peak {row['submitter_peak_mb']:.0f} MB (goal <= 1024); done {row['lag_after_last_job_s']:.2f} s after "
        f"the last job (goal <= 1 s); wall per task {per_task:.2f}x the smallest size's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=["lsf", "slurm", "htcondor"], default="lsf")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--instant", type=int, nargs="*", default=[100000], help="LSF: sizes whose jobs end at once")
    parser.add_argument("--limit", type=int, default=100, help="the array limit (lsf_array_size; elsewhere as set)")
    parser.add_argument("--folder", default=None, help="where the runs go (Slurm, HTCondor: a shared folder)")
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    instant = sorted(options.instant) if options.system == "lsf" else []
    runs = [(count, False) for count in sorted(options.sizes)] + [(count, True) for count in instant]
    name = "batch_scale" if options.system == "lsf" else f"batch_scale_{options.system}"
    system = "lsf stand-in" if options.system == "lsf" else f"the testbed's {options.system}"
    with tempfile.TemporaryDirectory(prefix="b2box-batch-scale-", dir=options.folder) as folder:
        for count, at_once in runs:
            rows.append(measured(options.system, count, options.limit, folder, at_once))
            print(describe(rows[-1], rows[0]), flush=True)
            path = write_results(name, {"system": system, "limit": options.limit, "rows": rows})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
