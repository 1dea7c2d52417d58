"""Local runs of N trivial file-writing tasks: b2box against b2luigi 1.3.0, in the same run.

luigi's local scheduler costs O(N^2) for N tasks; b2box's is linear. This runs the same
workflow script (flat_workflow.py) with both, prints the times and the ratios, and writes
them to benchmarks/results/local_scaling.json.

    python benchmarks/local_scaling.py                 # b2box 1k/3k/10k, b2luigi 1k/3k, medians of 3 runs
    python benchmarks/local_scaling.py --b2luigi-max 10000   # also b2luigi at 10k (~9 minutes)
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import HERE, b2luigi_python, timed_run, write_results

SCRIPT = HERE / "flat_workflow.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--b2luigi-max", type=int, default=3000, help="largest N to run with b2luigi")
    parser.add_argument("--no-b2luigi", action="store_true", help="measure b2box only")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size and implementation; the median counts")
    options = parser.parse_args()

    reference = None if options.no_b2luigi else b2luigi_python()
    rows = []
    for size in options.sizes:
        row: dict[str, float | int | None] = {"tasks": size}
        b2box_times, b2luigi_times = [], []
        for _ in range(max(1, options.repeat)):  # interleaved, so both see the same machine
            b2box_times.append(timed_run(sys.executable, SCRIPT, {"BENCH_IMPL": "b2box", "BENCH_N": str(size)}))
            if reference and size <= options.b2luigi_max:
                b2luigi_times.append(timed_run(reference, SCRIPT, {"BENCH_IMPL": "b2luigi", "BENCH_N": str(size)}))
        row["b2box_s"] = statistics.median(b2box_times)
        row["b2box_ms_per_task"] = 1000 * row["b2box_s"] / size
        if b2luigi_times:
            row["b2luigi_s"] = statistics.median(b2luigi_times)
            row["speedup"] = row["b2luigi_s"] / row["b2box_s"]
        rows.append(row)
        speedup = f"  b2luigi {row['b2luigi_s']:8.2f} s  ratio {row['speedup']:6.1f}x" if "speedup" in row else ""
        print(
            f"N={size:>6}  b2box {row['b2box_s']:7.2f} s ({row['b2box_ms_per_task']:.3f} ms/task){speedup}", flush=True
        )
    smallest, largest = rows[0], rows[-1]
    growth = (largest["b2box_s"] / smallest["b2box_s"]) / (largest["tasks"] / smallest["tasks"])
    print(
        f"b2box time grows {growth:.2f}x as fast as N between N={smallest['tasks']} and N={largest['tasks']} "
        "(1.0 = linear)"
    )
    path = write_results("local_scaling", {"rows": rows, "b2box_growth_vs_linear": growth})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
