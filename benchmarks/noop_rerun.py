"""The no-op rerun: every output of the average workflow exists, and b2box is started again.

This is what every b2box command pays before anything happens (building the graph, checking which outputs
exist), so a change must not make it slower. The workflow (benchmarks/average_workflow.py, N tasks) runs once
to make its outputs; then the rerun is timed with this tree's b2box and with a baseline revision's, in turn
(A B A B ...), on the same result folder, and the ratio is printed pair by pair. Results go to
benchmarks/results/noop_rerun.json.

    python benchmarks/noop_rerun.py --baseline 616e607            # N = 100,000, 3 pairs
    python benchmarks/noop_rerun.py --baseline HEAD~3 --tasks 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import HERE, measured, write_results

SCRIPT = HERE / "average_workflow.py"
TREE = HERE.parent


def baseline_tree(revision: str, into: Path) -> Path:
    """A checkout of ``revision``'s b2box package (``git archive``, no work tree of this repo is touched)."""
    archive = subprocess.run(
        ["git", "-C", str(TREE), "archive", "--format=tar", revision, "b2box"], check=True, capture_output=True
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def timed(python_path: Path, results: str, tasks: int) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of the workflow with the b2box found at ``python_path``."""
    env = {**os.environ, "PYTHONPATH": str(python_path), "BENCH_RESULTS": results, "BENCH_N": str(tasks)}
    return measured([sys.executable, str(SCRIPT)], env, results)


def which_b2box(python_path: Path) -> str:
    """The file ``import b2box`` loads with ``python_path`` first (proof that the comparison compares two trees)."""
    env = {**os.environ, "PYTHONPATH": str(python_path)}
    done = subprocess.run(  # from a neutral folder: the current one comes first on sys.path
        [sys.executable, "-c", "import b2box; print(b2box.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with (e.g. main before a change)")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of reruns; medians count")
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="b2box-noop-"))
    try:
        base = baseline_tree(options.baseline, scratch / "baseline")
        trees = {"this tree": TREE, f"baseline {options.baseline}": base}
        for label, tree in trees.items():
            print(f"{label}: {which_b2box(tree)}", flush=True)
        results = str(scratch / "results")
        os.makedirs(results)
        first, first_peak = timed(TREE, results, options.tasks)
        print(f"first run (this tree), N={options.tasks}: {first:.2f} s, peak {first_peak:.0f} MB", flush=True)
        times: dict[str, list[float]] = {label: [] for label in trees}
        peaks: dict[str, list[float]] = {label: [] for label in trees}
        for _ in range(max(1, options.repeat)):
            for label, tree in trees.items():
                seconds, peak = timed(tree, results, options.tasks)
                times[label].append(seconds)
                peaks[label].append(peak)
        ours, theirs = times["this tree"], times[f"baseline {options.baseline}"]
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        for label in trees:
            print(
                f"no-op rerun, {label}: median {statistics.median(times[label]):.2f} s "
                f"(min {min(times[label]):.2f}, max {max(times[label]):.2f}), "
                f"peak {statistics.median(peaks[label]):.0f} MB",
                flush=True,
            )
        print(f"ratio this tree / baseline, pair by pair: {', '.join(f'{r:.3f}' for r in ratios)}; "
              f"median {statistics.median(ratios):.3f}")  # fmt: skip
        path = write_results(
            "noop_rerun",
            {
                "tasks": options.tasks,
                "baseline": options.baseline,
                "first_run_s": first,
                "rerun_s": times,
                "peak_mb": peaks,
                "ratio_pairs": ratios,
                "ratio_median": statistics.median(ratios),
            },
        )
        print(f"results written to {path}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
