"""Large batch runs within a small array limit: submit calls, status queries per poll, the submitter's CPU per poll
and peak memory, and how soon after the last job the run is done.

N trivial tasks (benchmarks/batch_workflow.py, no container) go to the LSF stand-in of tests/standins/lsf (4 slots,
its jobs run on this machine) with ``lsf_array_size`` set to the limit, so a wave of N jobs must go out as
ceil(N / limit) arrays. Per size it prints and records (benchmarks/results/batch_scale.json):

- bsub calls against the goal N / limit + 1, and bjobs calls against b2box's polls (one query per poll);
- the submitter's CPU for its costliest poll (goal: at most 1 s) and its peak RSS (goal: at most 1 GB);
- the wall time after the last job ended (goal: at most one poll interval, 1 s here).

The baseline in the same run is the smallest size: the ratios say how each figure grows with N.

    python benchmarks/batch_scale.py --sizes 500 2000 --limit 100
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from typing import Any

from batch_systems import run_once
from common import write_results


def measured(count: int, limit: int, folder: str) -> dict[str, Any]:
    settings = {"lsf_array_size": limit, "batch_poll_interval": 1.0}
    row = run_once(os.environ.get("PYTHON", "python3"), "b2box", "lsf", count, settings, folder)
    row.update(limit=limit, bsub_goal=math.ceil(count / limit) + 1)
    return row


def describe(row: dict[str, Any], base: dict[str, Any]) -> str:
    per_task = row["wall_s"] / row["tasks"] / (base["wall_s"] / base["tasks"])
    return (
        f"N={row['tasks']:>6}: {row['bsub_calls']} bsub (goal <= {row['bsub_goal']}), {row['bjobs_calls']} bjobs for "
        f"{row['status_queries']} polls; costliest poll {row['slowest_poll_cpu_s']:.3f} s CPU (goal <= 1 s); "
        f"peak {row['submitter_peak_mb']:.0f} MB (goal <= 1024); done {row['lag_after_last_job_s']:.2f} s after "
        f"the last job (goal <= 1 s); wall per task {per_task:.2f}x the smallest size's"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--limit", type=int, default=100, help="the array limit (lsf_array_size)")
    options = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="b2box-batch-scale-") as folder:
        for count in sorted(options.sizes):
            rows.append(measured(count, options.limit, folder))
            print(describe(rows[-1], rows[0]), flush=True)
            path = write_results("batch_scale", {"system": "lsf stand-in", "limit": options.limit, "rows": rows})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
