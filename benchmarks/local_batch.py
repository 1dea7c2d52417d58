"""Per-job overhead of --batch on this machine: 100 trivial tasks, 10 at a time.

Each task runs as its own process through its job wrapper (b2box: batch_system
"local"; b2luigi 1.3.0: its subprocess backend, batch_system "test"). Prints
both times and the ratio and writes them to benchmarks/results/local_batch.json.

    python benchmarks/local_batch.py [--tasks 100] [--workers 10]
"""

from __future__ import annotations

import argparse
import sys

from common import HERE, b2luigi_python, timed_run, write_results

SCRIPT = HERE / "flat_workflow.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--workers", type=int, default=10)
    options = parser.parse_args()
    common = {"BENCH_N": str(options.tasks), "BENCH_WORKERS": str(options.workers)}
    b2box_s = timed_run(
        sys.executable, SCRIPT, {**common, "BENCH_IMPL": "b2box", "BENCH_BATCH_SYSTEM": "local"}, ("--batch",)
    )
    print(f"b2box   --batch (local):   {b2box_s:6.2f} s  ({1000 * b2box_s / options.tasks:.0f} ms per job)", flush=True)
    b2luigi_s = timed_run(
        b2luigi_python(), SCRIPT, {**common, "BENCH_IMPL": "b2luigi", "BENCH_BATCH_SYSTEM": "test"}, ("--batch",)
    )
    print(f"b2luigi --batch (test):    {b2luigi_s:6.2f} s  ({1000 * b2luigi_s / options.tasks:.0f} ms per job)")
    print(f"b2box is {b2luigi_s / b2box_s:.1f}x faster")
    path = write_results(
        "local_batch",
        {
            "tasks": options.tasks,
            "workers": options.workers,
            "b2box_s": b2box_s,
            "b2luigi_s": b2luigi_s,
            "speedup": b2luigi_s / b2box_s,
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
