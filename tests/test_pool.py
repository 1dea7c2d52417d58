"""b2box on the testbed's worker node: Apptainer jobs run locally, on HTCondor and on Slurm.

Everything runs as the testbed's ordinary user inside the worker-node container, which is also the submit
node; the workflow lives in the shared folder, so the host reads the results at the same paths.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.identity_runs import NAMES as IDENTITY_NAMES
from tests.identity_runs import in_worker_node
from tests.identity_runs import run as run_identity
from tests.identity_runs import setup as setup_identity

WORKFLOWS = Path(__file__).parent / "workflows"
BATCH_NAME = "b2box-pool-test"


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def setup_workflow(folder: Path, settings: dict[str, Any]) -> Path:
    script = folder / "pool.py"
    shutil.copy(WORKFLOWS / "pool.py", script)
    (folder / "settings.json").write_text(json.dumps({"job_name": BATCH_NAME, **settings}))
    return script


def run_in_pool(worker: Any, script: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):
    python = worker.install_b2box()
    return worker.run([python, str(script), *args], cwd=script.parent, env=env, check=check, timeout=600)


def items(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("results/index=*/item.json"))]


def provenance(folder: Path, index: int) -> dict[str, Any]:
    return json.loads((folder / f"logs/index={index}/Item/provenance.json").read_text())


@pytest.mark.apptainer
def test_workflow_in_apptainer_locally(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = setup_workflow(shared_tmp, {"image": analysis_sif, "batch_system": "local", "result_dir": "results"})
    run_in_pool(worker, script, "--batch", env={"POOL_N": "3"})
    found = items(shared_tmp)
    assert [item["index"] for item in found] == [0, 1, 2]
    assert all(item["python"].startswith("3.11") and item["uid"] == worker.uid for item in found)
    record = provenance(shared_tmp, 1)
    assert record["image"]["runtime"] == "apptainer" and record["image"]["digest"] == sha256(analysis_sif)
    assert "apptainer" in record["image"]["runtime_version"]
    assert (shared_tmp / "results/index=1/item.json").stat().st_uid == worker.uid


@pytest.mark.htcondor
@pytest.mark.apptainer
def test_many_tasks_on_htcondor_in_apptainer_one_cluster(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = setup_workflow(
        shared_tmp,
        {"image": analysis_sif, "batch_system": "htcondor", "result_dir": "results", "batch_poll_interval": 0.5},
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "12"})
    found = items(shared_tmp)
    assert len(found) == 12 and json.loads((shared_tmp / "results/count=12/total.json").read_text()) == {"total": 66}
    records = [provenance(shared_tmp, index) for index in range(12)]
    clusters = {record["job_id"].split(".")[0] for record in records}
    assert len(clusters) == 1, "all ready tasks went out as one cluster"
    assert all(
        record["backend"] == "htcondor" and record["image"]["digest"] == sha256(analysis_sif) for record in records
    )
    assert all(item["python"].startswith("3.11") for item in found), "ran inside the analysis image"


@pytest.mark.htcondor
@pytest.mark.apptainer
@pytest.mark.parametrize(
    ("mode", "attribute"), [("container_image", "ContainerImage"), ("singularity_image", "SingularityImage")]
)
def test_htcondor_starts_the_container_itself(
    worker: Any, shared_tmp: Path, analysis_sif: str, mode: str, attribute: str
) -> None:
    """htcondor_container: HTCondor's container universe, or a site's +SingularityImage, starts the image."""
    script = setup_workflow(
        shared_tmp,
        {
            "image": analysis_sif,
            "batch_system": "htcondor",
            "result_dir": "results",
            "htcondor_container": mode,
            "batch_poll_interval": 0.5,
        },
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "3"})
    found = items(shared_tmp)
    assert len(found) == 3 and all(item["python"].startswith("3.11") for item in found), "ran in the image"
    records = [provenance(shared_tmp, index) for index in range(3)]
    assert all(
        record["image"]["digest"] == sha256(analysis_sif) and record["image"]["runtime"] == "apptainer"
        for record in records
    )
    ads = worker.run(["condor_history", "-constraint", f'Iwd == "{shared_tmp}"', "-af", attribute], check=False)
    assert ads.stdout.split().count(analysis_sif) == 4, f"HTCondor was given the image: {ads.stdout}"
    wrapper = next(shared_tmp.glob("task_files/index=0/Item/job.sh")).read_text()
    assert "exec --cleanenv" not in wrapper, "the wrapper itself starts no container"


@pytest.mark.htcondor
@pytest.mark.apptainer
def test_tasks_per_job_share_one_container_on_htcondor(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = setup_workflow(
        shared_tmp,
        {
            "image": analysis_sif,
            "batch_system": "htcondor",
            "result_dir": "results",
            "tasks_per_job": 4,
            "batch_poll_interval": 0.5,
        },
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "8"})
    found = items(shared_tmp)
    assert len(found) == 8 and all(item["python"].startswith("3.11") for item in found), "ran in the image"
    assert len({item["ppid"] for item in found[:4]}) == 1, "one Python in one container for the group"
    records = [provenance(shared_tmp, index) for index in range(8)]
    assert len({record["job_id"] for record in records}) == 2, "8 tasks in 2 jobs"
    assert all(record["image"]["digest"] == sha256(analysis_sif) for record in records)


@pytest.mark.htcondor
def test_htcondor_command_line_fallback(worker: Any, shared_tmp: Path) -> None:
    """Where HTCondor's Python bindings are missing, condor_submit/condor_q/condor_rm do the same work."""
    script = setup_workflow(
        shared_tmp,
        {"batch_system": "htcondor", "htcondor_interface": "cli", "result_dir": "results", "batch_poll_interval": 0.5},
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "5"})
    records = [provenance(shared_tmp, index) for index in range(5)]
    assert len({record["job_id"].split(".")[0] for record in records}) == 1
    assert json.loads((shared_tmp / "results/count=5/total.json").read_text()) == {"total": 10}


@pytest.mark.slurm
@pytest.mark.apptainer
def test_many_tasks_on_slurm_in_apptainer_one_array(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = setup_workflow(
        shared_tmp,
        {"image": analysis_sif, "batch_system": "slurm", "result_dir": "results", "batch_poll_interval": 0.5},
    )
    run_in_pool(worker, script, "--batch", env={"POOL_N": "8"})
    records = [provenance(shared_tmp, index) for index in range(8)]
    arrays = {record["job_id"].split("_")[0] for record in records}
    assert len(arrays) == 1, "all ready tasks went out as one job array"
    assert all(record["backend"] == "slurm" and record["image"]["digest"] == sha256(analysis_sif) for record in records)
    assert json.loads((shared_tmp / "results/count=8/total.json").read_text()) == {"total": 28}


@pytest.mark.htcondor
def test_held_job_is_removed_and_retried(worker: Any, shared_tmp: Path) -> None:
    script = setup_workflow(
        shared_tmp, {"batch_system": "htcondor", "result_dir": "results", "retries": 1, "batch_poll_interval": 0.5}
    )
    done = run_in_pool(worker, script, "--batch", env={"POOL_N": "2", "POOL_HOLD_ONCE": str(shared_tmp / "held")})
    assert "held" in done.stderr and "retry 1 of 1" in done.stderr
    assert len(items(shared_tmp)) == 2
    history = worker.run(["condor_history", "-constraint", f'Iwd == "{shared_tmp}"', "-af", "JobStatus"], check=False)
    assert history.stdout.split().count("3") >= 1, "the held job was removed"


@pytest.mark.htcondor
@pytest.mark.slurm
@pytest.mark.parametrize("system", ["htcondor", "slurm"])
def test_failing_job_is_reported_with_its_log(worker: Any, shared_tmp: Path, system: str) -> None:
    script = setup_workflow(
        shared_tmp,
        {"batch_system": system, "result_dir": "results", "batch_poll_interval": 0.5, "env": {"POOL_FAIL": "1"}},
    )
    failed = run_in_pool(worker, script, "--batch", env={"POOL_N": "3"}, check=False)
    assert failed.returncode == 1
    log = shared_tmp / "logs/index=1/Item/stderr"
    assert str(log) in failed.stderr and "fails on purpose" in log.read_text()
    assert "exited with code 1" in failed.stderr
    assert len(items(shared_tmp)) == 2 and not (shared_tmp / "results/index=1/item.json").exists()


def schedd_jobs(worker: Any, folder: Path) -> list[str]:
    """Every job the schedd saw for this folder: still queued, and from its history."""
    constraint = f'JobBatchName == "{BATCH_NAME}" && Iwd == "{folder}"'
    queued = worker.run(["condor_q", "-constraint", constraint, "-af", "ClusterId", "ProcId"], check=False).stdout
    history = worker.run(
        ["condor_history", "-constraint", constraint, "-af", "ClusterId", "ProcId"], check=False
    ).stdout
    return [line for line in (queued + history).splitlines() if line.strip()]


def start_in_background(worker: Any, script: Path, env: dict[str, str]) -> None:
    python = worker.install_b2box()
    exports = " ".join(f"{key}={value}" for key, value in env.items())
    folder = script.parent
    worker.run(
        f"cd {folder}; {exports} nohup {python} {script} --batch > {folder}/scheduler.log 2>&1 & "
        f"echo $! > {folder}/scheduler.pid",
        timeout=30,
    )


def wait_for(predicate: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.htcondor
def test_killed_scheduler_restarts_and_reattaches_without_duplicates(worker: Any, shared_tmp: Path) -> None:
    script = setup_workflow(
        shared_tmp,
        {"batch_system": "htcondor", "result_dir": "results", "batch_poll_interval": 0.5, "env": {"POOL_SLEEP": "8"}},
    )
    env = {"POOL_N": "4"}
    start_in_background(worker, script, env)
    wait_for(lambda: len(list(shared_tmp.glob("task_files/index=*/Item/batch_job.json"))) == 4)
    worker.run(f"kill -9 $(cat {shared_tmp}/scheduler.pid)")
    restarted = run_in_pool(worker, script, "--batch", env=env)
    assert "re-attached to 4 job(s)" in restarted.stderr
    assert len(items(shared_tmp)) == 4
    assert len(schedd_jobs(worker, shared_tmp)) == 5, "4 items + 1 total: nothing was submitted twice"


@pytest.mark.htcondor
def test_interrupt_removes_the_jobs(worker: Any, shared_tmp: Path) -> None:
    """Ctrl-C and SIGTERM (a cancelled CI job) stop the run and remove its jobs; SIGTERM here, because a
    process started in the background by a non-interactive shell ignores SIGINT."""
    script = setup_workflow(
        shared_tmp,
        {"batch_system": "htcondor", "result_dir": "results", "batch_poll_interval": 0.5, "env": {"POOL_SLEEP": "60"}},
    )
    start_in_background(worker, script, {"POOL_N": "3"})
    wait_for(lambda: len(list(shared_tmp.glob("task_files/index=*/Item/batch_job.json"))) == 3)
    worker.run(f"kill -TERM $(cat {shared_tmp}/scheduler.pid)")
    wait_for(lambda: "interrupted" in (shared_tmp / "scheduler.log").read_text(), timeout=60)
    constraint = f'JobBatchName == "{BATCH_NAME}" && Iwd == "{shared_tmp}"'
    wait_for(
        lambda: not worker.run(["condor_q", "-constraint", constraint, "-af", "ClusterId"], check=False).stdout.strip(),
        timeout=60,
    )
    assert not list(shared_tmp.glob("task_files/index=*/Item/batch_job.json"))


@pytest.mark.apptainer
@pytest.mark.htcondor
@pytest.mark.slurm
@pytest.mark.parametrize(("system", "per_job"), [("htcondor", 1), ("slurm", 3)])
def test_result_identity_on_the_pool_in_apptainer(
    worker: Any, shared_tmp: Path, analysis_sif: str, system: str, per_job: int
) -> None:
    """Jobs keep what made their results (the SIF's sha256 among it); a changed variable reruns exactly its task
    and the sum made from it, an env_script edit every task that sources it (also three tasks to a job)."""
    settings = {"image": analysis_sif, "batch_system": system, "env_script": "env.sh", "tasks_per_job": per_job}
    setup_identity(shared_tmp, {**settings, "batch_poll_interval": 0.5, "job_name": BATCH_NAME})
    (shared_tmp / "env.sh").write_text("export SETUP=one\n")
    runner = in_worker_node(worker)
    assert run_identity(shared_tmp, "--batch", runner=runner) == set(IDENTITY_NAMES)
    record = json.loads((shared_tmp / "results/index=0/.b2box-identity-number.json.json").read_text())
    assert record["identity"]["environment_label"] == f"apptainer {analysis_sif} ({sha256(analysis_sif)[:19]}…)"
    assert record["host"] != "" and record["outputs"] == ["number.json"]
    assert run_identity(shared_tmp, "--batch", runner=runner) == set()
    changed = {"IDENTITY_FLAVOUR_2": "spicy"}
    assert run_identity(shared_tmp, "--batch", env=changed, runner=runner) == {"Number(2)", "Sum"}
    (shared_tmp / "env.sh").write_text("export SETUP=two\n")
    assert run_identity(shared_tmp, "--batch", env=changed, runner=runner) == set(IDENTITY_NAMES)
