"""batch_scale.py on the testbed's real Slurm cluster and HTCondor pool, with their limits set small.

Run on the host (as root, like the test suite): it brings the testbed up, installs this working tree in the worker
node, sets Slurm's ``MaxArraySize`` and HTCondor's ``MAX_JOBS_PER_SUBMISSION`` to ``--limit`` (taken back after,
as the limit tests do), runs benchmarks/batch_scale.py there as the worker node's user with its jobs in the shared
folder, and copies the results (benchmarks/results/batch_scale_<system>.json) back. The jobs are real: N trivial
tasks without a container on a one-node cluster of 4 slots, so N stays in the thousands here; the 100,000-job row
is the LSF stand-in's (batch_scale.py --instant).

    python3 benchmarks/testbed_scale.py --systems slurm htcondor --sizes 1000 --limit 100
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _testbed() -> ModuleType:
    """ci/testbed.py, loaded from its file (ci/ is no package)."""
    spec = importlib.util.spec_from_file_location("b2box_ci_testbed", HERE.parent / "ci" / "testbed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def small_limits(testbed: ModuleType, worker: Any, system: str, limit: int) -> Iterator[None]:
    """The cluster's own array limit at ``limit`` jobs per submission while the block runs."""
    if system == "slurm":  # MaxArraySize is one more than the largest index: arrays of at most ``limit`` jobs
        with testbed.slurm_limits(worker, {"MaxArraySize": str(limit)}):
            yield
    else:
        with testbed.htcondor_limits(worker, {"MAX_JOBS_PER_SUBMISSION": str(limit)}):
            yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", choices=["slurm", "htcondor"], default=["slurm", "htcondor"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--limit", type=int, default=100)
    options = parser.parse_args()
    testbed = _testbed()
    worker = testbed.up()
    python = worker.install_b2box()
    bench = Path(worker.shared_dir) / "bench-scale"
    runs = Path(worker.shared_dir) / "bench-scale-runs"
    shutil.rmtree(bench, ignore_errors=True)
    shutil.copytree(HERE, bench, ignore=shutil.ignore_patterns("results", "__pycache__"))
    (bench / "results").mkdir()
    runs.mkdir(exist_ok=True)
    worker.run(["chown", "-R", f"{worker.uid}", str(bench), str(runs)], user="root")
    for system in options.systems:
        command = [python, "batch_scale.py", "--system", system, "--sizes", *map(str, options.sizes)]
        command += ["--instant", "--limit", str(options.limit), "--folder", str(runs)]
        with small_limits(testbed, worker, system, options.limit):
            done = worker.run(command, cwd=bench, env={"PYTHON": python}, timeout=7200, check=False)
        print(done.stdout + done.stderr, flush=True)
        if done.returncode == 0:
            shutil.copy(bench / "results" / f"batch_scale_{system}.json", HERE / "results")


if __name__ == "__main__":
    main()
