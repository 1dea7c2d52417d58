"""b2box within the limits of the testbed's real Slurm cluster and HTCondor pool, set small for these tests only
(ci/testbed_lib/limits.py sets them and takes them back): Slurm with ``MaxArraySize = 11`` and ``MaxJobCount = 40``,
HTCondor with ``MAX_JOBS_PER_SUBMISSION = 10``. Every item runs once, the submissions are counted, a refusal for a
limit is recovered from, and 1,500 refusals of one cause are one line.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_pool import items, provenance, run_in_pool, setup_workflow
from tests.testbed_plugin import testbed

SLURM_LIMITS = {"MaxArraySize": "11", "MaxJobCount": "40", "MinJobAge": "2"}
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def small_slurm(worker: Any) -> Iterator[None]:
    with testbed.slurm_limits(worker, SLURM_LIMITS):
        yield


def counting_sbatch(folder: Path) -> tuple[dict[str, str], Path]:
    """An ``sbatch`` first on PATH that writes down the array size of every call, then runs the real one."""
    shims, calls = folder / "shims", folder / "sbatch-calls"
    shims.mkdir()
    (shims / "sbatch").write_text(
        "#!/bin/bash\n"
        'for word in "$@"; do case "$word" in --array=*) echo "${word#--array=0-}" >> '
        + str(calls)
        + " ;; esac; done\n"
        'exec /usr/bin/sbatch "$@"\n'
    )
    (shims / "sbatch").chmod(0o755)
    return {"PATH": f"{shims}:{PATH}"}, calls


def array_sizes(calls: Path) -> list[int]:
    return [int(line.split("%")[0]) + 1 for line in calls.read_text().split()] if calls.exists() else []


def ran_once(folder: Path, count: int) -> None:
    runs = collections.Counter((folder / "runs").read_text().split())
    assert runs == collections.Counter({str(index): 1 for index in range(count)}), "every item ran once"
    assert len(items(folder)) == count


def slurm_workflow(folder: Path, **settings: Any) -> tuple[Path, dict[str, str], Path]:
    script = setup_workflow(
        folder, {"batch_system": "slurm", "result_dir": "results", "batch_poll_interval": 0.5, **settings}
    )
    env, calls = counting_sbatch(folder)
    return script, {**env, "POOL_N": "50", "POOL_RUNS": str(folder / "runs")}, calls


@pytest.mark.slurm
def test_slurm_arrays_fit_max_array_size_and_the_queue_max_job_count(
    worker: Any, shared_tmp: Path, small_slurm: None
) -> None:
    script, env, calls = slurm_workflow(shared_tmp)
    done = run_in_pool(worker, script, "--batch", env=env)
    ran_once(shared_tmp, 50)
    sizes = array_sizes(calls)
    assert sizes[:4] == [11, 11, 11, 3], "36 jobs (90 % of MaxJobCount) in arrays of MaxArraySize at first"
    assert max(sizes) <= 11 and sum(sizes) == 51, "every job submitted once (50 items and the total)"
    assert "Invalid job array" not in done.stderr


@pytest.mark.slurm
def test_slurm_refusal_for_the_array_size_is_recovered_from(worker: Any, shared_tmp: Path, small_slurm: None) -> None:
    script, env, calls = slurm_workflow(shared_tmp, slurm_max_array_size=20)  # a wrong setting, above MaxArraySize
    done = run_in_pool(worker, script, "--batch", env=env)
    ran_once(shared_tmp, 50)
    sizes = array_sizes(calls)
    assert sizes[:3] == [20, 10, 10], "refused at 20, then half as many at once"
    assert "refused an array of 20 jobs" in done.stderr and "Invalid job array specification" in done.stderr
    assert sum(sizes) == 51 + 20, "the refused array went out again in pieces, nothing else twice"


@pytest.mark.slurm
def test_1500_refusals_of_one_cause_are_one_line(worker: Any, shared_tmp: Path) -> None:
    script = setup_workflow(
        shared_tmp, {"batch_system": "slurm", "result_dir": "results", "slurm_settings": {"partition": "nope"}}
    )
    env = {"POOL_N": "1500", "POOL_WORKERS": "1500"}  # one wave: two arrays (MaxArraySize 1001), both refused
    done = run_in_pool(worker, script, "--batch", env=env, check=False)
    assert done.returncode != 0
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1, failed[:5]
    assert failed[0].startswith("b2box: FAILED 1,500 tasks of Item: sbatch refused the job:")
    assert "partition" in failed[0].lower() and "--verbose lists each" in failed[0]
    assert "1,500 of Item" in done.stderr, "the summary counts them by cause"


@pytest.mark.htcondor
@pytest.mark.parametrize("interface", ["bindings", "cli"])
def test_htcondor_submissions_fit_max_jobs_per_submission_with_late_materialisation(
    worker: Any, shared_tmp: Path, interface: str
) -> None:
    """Clusters of 10 (MAX_JOBS_PER_SUBMISSION) that keep 4 idle (htcondor_max_idle): jobs not made yet are missing
    from the queue, and must not count as finished (the bindings see the cluster ad, condor_q asks the factory)."""
    script = setup_workflow(
        shared_tmp,
        {"batch_system": "htcondor", "result_dir": "results", "batch_poll_interval": 0.5, "htcondor_max_idle": 4,
         "htcondor_interface": interface, "env": {"POOL_RUNS": str(shared_tmp / "runs")}},
    )  # fmt: skip
    env = {"POOL_N": "50"}
    with testbed.htcondor_limits(worker, {"MAX_JOBS_PER_SUBMISSION": "10"}):
        done = run_in_pool(worker, script, "--batch", env=env)
    ran_once(shared_tmp, 50)
    clusters = collections.Counter(provenance(shared_tmp, index)["job_id"].split(".")[0] for index in range(50))
    assert sorted(clusters.values()) == [10] * 5, "five clusters of MAX_JOBS_PER_SUBMISSION jobs"
    assert "MAX_JOBS_PER_SUBMISSION" not in done.stderr, "nothing was refused"


@pytest.mark.htcondor
def test_htcondor_refusal_for_max_jobs_per_submission_is_recovered_from(worker: Any, shared_tmp: Path) -> None:
    script = setup_workflow(
        shared_tmp,
        {"batch_system": "htcondor", "result_dir": "results", "batch_poll_interval": 0.5,
         "htcondor_max_jobs_per_submission": 25, "htcondor_interface": "cli",
         "env": {"POOL_RUNS": str(shared_tmp / "runs")}},
    )  # fmt: skip
    env = {"POOL_N": "50"}
    with testbed.htcondor_limits(worker, {"MAX_JOBS_PER_SUBMISSION": "10"}):
        done = run_in_pool(worker, script, "--batch", env=env)
    ran_once(shared_tmp, 50)
    assert "refused an array of 25 jobs" in done.stderr and "MAX_JOBS_PER_SUBMISSION" in done.stderr
    clusters = {provenance(shared_tmp, index)["job_id"].split(".")[0] for index in range(50)}
    assert len(clusters) >= 5
    assert json.loads((shared_tmp / "results/count=50/total.json").read_text()) == {"total": 1225}


@pytest.mark.slurm
def test_max_jobs_in_flight_is_slurms_array_throttle(worker: Any, shared_tmp: Path) -> None:
    """All 12 items go out as one array that Slurm runs 2 at a time (``%2``), not 6 submissions of 2."""
    script, env, calls = slurm_workflow(shared_tmp, max_jobs_in_flight=2)
    env.update(POOL_N="12", POOL_SLEEP="1")
    run_in_pool(worker, script, "--batch", env=env)
    ran_once(shared_tmp, 12)
    assert calls.read_text().split() == ["11%2", "0"], "the items in one throttled array, then the total"
    spans = [provenance(shared_tmp, index) for index in range(12)]
    moments = sorted([(record["start_time"], 1) for record in spans] + [(record["end_time"], -1) for record in spans])
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert most <= 2, "Slurm ran at most two at once"
