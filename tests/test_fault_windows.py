"""The second fault suite: the windows where a killed, suspended or interrupted submitter could run a task twice,
values that could break a job, and what a run could leave behind.

Each test here was written against a defect found by trying faults adversarially (issue 23), and fails without the
mechanism that closes it. Like tests/test_faults.py, every fault checks that no output is lost, no task runs twice,
nothing looks complete that is not and the exit code is the documented one; ``benchmarks/faults.py`` runs both
modules and counts every fault in ``benchmarks/results/faults.json``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import b2box as b2luigi
from b2box.engine import run_lock
from b2box.errors import TaskDefinitionError
from tests.conftest import run_python
from tests.test_faults import Workflow, flaky_command, pool_workflow

VALUES = Path(__file__).parent / "workflows" / "values.py"


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stopped_at(workflow: Workflow, point: str, **faults: str) -> dict[str, str]:
    """The environment that stops the workflow's run at failpoint ``point`` (b2box.batch.failpoints)."""
    mark = workflow.folder / f"{point}.mark"
    return workflow.env(_B2BOX_FAILPOINT=point, _B2BOX_FAILPOINT_MARK=str(mark), **faults)


# ------------------------------------------------------------------------------------ the submit window


def test_submitter_killed_between_starting_a_local_job_and_recording_it(tmp_path: Path) -> None:
    """The job runs, the run never learnt its id: the next run finds it by the id the job wrote when it started."""
    workflow = Workflow(tmp_path / "wf")
    first = workflow.start("--batch", env=stopped_at(workflow, "submitted-unrecorded", FAULT_N="1", FAULT_0="sleep:3"))
    wait_for(workflow.folder / "submitted-unrecorded.mark")
    first.kill()
    first.communicate(timeout=30)
    second = workflow.run("--batch", env=workflow.env(FAULT_N="1", FAULT_0="sleep:3"))
    assert second.returncode == 0, second.stderr
    assert "re-attached to 1 job(s)" in second.stderr or "collecting 1 job(s)" in second.stderr, second.stderr
    assert workflow.runs_of() == Counter({0: 1}), "the step ran once"
    assert workflow.finished(0) == "0" and not workflow.complete_looking()
    assert not list((workflow.folder / "task_files/.b2box/submitting").glob("*")), "the intents were taken over"


def test_submitter_killed_before_its_submission_submits_it_on_the_next_run(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    first = workflow.start("--batch", env=stopped_at(workflow, "intended-unsubmitted", FAULT_N="1"))
    wait_for(workflow.folder / "intended-unsubmitted.mark")
    first.kill()
    first.communicate(timeout=30)
    assert workflow.runs_of() == Counter(), "killed before anything was submitted"
    second = workflow.run("--batch", env=workflow.env(FAULT_N="1"))
    assert second.returncode == 0, second.stderr
    assert workflow.runs_of() == Counter({0: 1}) and workflow.finished(0) == "0"


def test_ctrl_c_between_starting_a_local_job_and_recording_it_stops_that_job_too(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    run = workflow.start("--batch", env=stopped_at(workflow, "submitted-unrecorded", FAULT_N="1", FAULT_0="sleep:2"))
    wait_for(workflow.folder / "submitted-unrecorded.mark")
    workflow.wait_for_start(0)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    time.sleep(3)  # the step would have finished by now, had it been left running
    assert not workflow.output(0).exists(), "no job committed after its run said it stopped"
    assert not list(workflow.folder.glob("results/index=0/.b2box-partial-*")), "nor left its partial output"
    again = workflow.run("--batch", env=workflow.env(FAULT_N="1"))
    assert again.returncode == 0, again.stderr
    assert workflow.runs_of() == Counter({0: 2}) and workflow.finished(0) == "0"


SLOW_SBATCH = """#!/bin/bash
# A busy Slurm controller: the array is queued at once, the answer comes a minute later.
answer=$({real} "$@")
status=$?
touch {mark}
sleep 60
echo "$answer"
exit $status
"""


@pytest.mark.slurm
def test_submitter_killed_while_sbatch_answers_late_finds_the_array_again(worker: Any, shared_tmp: Path) -> None:
    """The array is queued, its answer never reached the run: the next run finds it by the wave's comment."""
    workflow = pool_workflow(shared_tmp, "slurm", {"FAULT_0": "sleep:5", "FAULT_1": "sleep:5"})
    shims = flaky_command(worker, shared_tmp, "squeue", fails=0)
    mark = shared_tmp / "queued.mark"
    real = worker.run(["bash", "-lc", "command -v sbatch"]).stdout.strip()
    (shims / "sbatch").write_text(SLOW_SBATCH.format(real=real, mark=mark))
    (shims / "sbatch").chmod(0o755)
    python = worker.install_b2box()
    log = shared_tmp / "first.log"
    worker.run(  # (the & applies to the submitter alone, so $! is its pid)
        f"cd {shared_tmp}; PATH={shims}:$PATH FAULT_RUNS={workflow.runs} FAULT_N=2 nohup {python} faults.py "
        f"--batch > {log} 2>&1 & echo $! > {shared_tmp}/first.pid",
        timeout=30,
    )
    wait_for(mark, timeout=120)
    worker.run(f"kill -9 $(cat {shared_tmp}/first.pid)", check=False)
    again = worker.run(
        f"cd {shared_tmp} && FAULT_RUNS={workflow.runs} FAULT_N=2 {python} faults.py --batch", check=False, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "re-attached to 2 job(s)" in again.stderr or "collecting 2 job(s)" in again.stderr, again.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1}), "the queued array ran once; nothing was submitted twice"
    assert workflow.finished(0) == "0" and workflow.finished(1) == "1"


# ------------------------------------------------------------------------------------- values that break jobs


@pytest.mark.parametrize("batch", [False, True], ids=["local run", "local batch"])
def test_a_line_break_in_a_parameter_value_runs_like_any_other_value(tmp_path: Path, batch: bool) -> None:
    script = tmp_path / "values.py"
    script.write_text(VALUES.read_text())
    done = run_python(script, *(["--batch"] if batch else []), env={"VALUES": json.dumps(["two\nlines", "plain"])})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "results" / "value=two\nlines" / "out.txt").read_text() == repr("two\nlines")


HARD = ["a:b,c", 'quote"d', "two\nlines"]  # each breaks a bind written as src:dst (or split on commas)


def _hard_values_workflow(folder: Path, settings: dict[str, Any]) -> Path:
    """values.py with its log and job folders outside the result folder, at paths with ':' and ','."""
    script = folder / "values.py"
    script.write_text(VALUES.read_text())
    paths = {"log_dir": str(folder / "logs:a,b"), "task_file_dir": str(folder / "jobs:c,d")}
    (folder / "settings.json").write_text(json.dumps({**paths, **settings}))
    return script


def _check_hard_values(folder: Path) -> None:
    for value in HARD:
        assert (folder / "results" / f"value={value}" / "out.txt").read_text() == repr(value)
    records = list((folder / "logs:a,b").glob("value=*/Echo/provenance.json"))
    assert len(records) == len(HARD) and all(json.loads(path.read_text())["exit_code"] == 0 for path in records)


@pytest.mark.docker
def test_paths_with_colons_and_commas_reach_a_docker_job_whole(tmp_path: Path, analysis_image: str) -> None:
    script = _hard_values_workflow(tmp_path, {"image": analysis_image, "runtime": "docker"})
    done = run_python(script, "--batch", env={"VALUES": json.dumps(HARD)})
    assert done.returncode == 0, done.stderr
    _check_hard_values(tmp_path)


@pytest.mark.apptainer
def test_paths_with_colons_and_commas_reach_an_apptainer_job_whole(
    worker: Any, shared_tmp: Path, analysis_sif: str
) -> None:
    script = _hard_values_workflow(shared_tmp, {"image": analysis_sif})
    python = worker.install_b2box()
    done = worker.run(
        f"cd {shared_tmp} && VALUES={shlex.quote(json.dumps(HARD))} {python} {script} --batch", check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    _check_hard_values(shared_tmp)


class Long(b2luigi.Task):
    value = b2luigi.Parameter()

    def output(self):
        yield self.add_to_output("out.txt")


def test_a_value_too_long_for_a_folder_name_names_the_parameter_and_the_fix() -> None:
    with pytest.raises(TaskDefinitionError, match=r"Long: parameter value makes the folder name .* 306 bytes long"):
        list(Long(value="x" * 300).output())
    with pytest.raises(TaskDefinitionError, match=r"hashed=True"):
        list(Long(value="é" * 130).output())  # 130 characters, 266 bytes
    assert list(Long(value="é" * 120).output()), "249 bytes are fine"


# -------------------------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"batch_poll_interval": -1}', "setting 'batch_poll_interval': Input should be greater than 0"),
        (b'{"result_dir": "r\xe9sultats"}', "settings.json: not UTF-8 text"),
        (None, "settings.json: a folder where b2box reads a settings file"),
    ],
    ids=["negative poll interval", "not UTF-8", "a folder"],
)
def test_bad_settings_stop_the_run_before_it_starts_naming_the_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    workflow = Workflow(tmp_path / "wf")
    settings = workflow.folder / "settings.json"
    settings.unlink()
    if content is None:
        settings.mkdir()
    else:
        settings.write_bytes(content)
    done = workflow.run("--batch", env=workflow.env(FAULT_N="1"))
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert workflow.runs_of() == Counter(), "nothing ran"


# ------------------------------------------------------------------------------------------------ the run lock


def test_two_workflows_sharing_a_result_folder_do_not_run_at_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared-results"
    first = Workflow(tmp_path / "a", {"result_dir": str(shared)})
    second = Workflow(tmp_path / "b", {"result_dir": str(shared)})
    second.runs = first.runs  # one record of every start, whoever made it
    run = first.start(env=first.env(FAULT_N="1", FAULT_0="hang"))
    first.wait_until_hanging()
    refused = second.run(env=second.env(FAULT_N="1"))
    assert refused.returncode == 4, refused.stderr
    assert f"holds {shared}/.b2box-run.lock" in refused.stderr and f"pid {run.pid}" in refused.stderr
    run.kill()
    run.communicate(timeout=30)
    assert first.runs_of() == Counter({0: 1}), "the second workflow started nothing"


def test_a_deleted_lock_file_does_not_let_a_second_run_in(tmp_path: Path) -> None:
    """task_files/ (with the workflow's lock) removed during a --batch run: the run makes its lock again, and the
    lock of the result folder keeps a second run out meanwhile."""
    workflow = Workflow(tmp_path / "wf")
    gate = tmp_path / "gate"  # the steps run until the test has tried its second and third run
    env = workflow.env(FAULT_N="3", FAULT_0="gate", FAULT_1="gate", FAULT_2="gate", FAULT_GATE=str(gate))
    first = workflow.start("--batch", env=env)
    try:
        for index in range(3):  # (a job that has not read its job.json yet would fail with it gone)
            workflow.wait_for_start(index)
        shutil.rmtree(workflow.folder / "task_files")
        second = workflow.run("--batch", env=env)
        assert second.returncode == 4, second.stderr
        time.sleep(2 * run_lock.HEARTBEAT + 1)
        assert (workflow.folder / "task_files/.b2box/run.lock").exists(), "the first run made its lock again"
        third = workflow.run("--batch", env=env)
        assert third.returncode == 4, third.stderr
    finally:
        gate.touch()
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1, 2: 1}), "no step ran twice"


def _start_here(workflow: Workflow, env: dict[str, str]) -> subprocess.Popen[str]:
    """The workflow's run on this host, making files everyone may change (the worker node's user must be able to
    take over its locks)."""
    return subprocess.Popen(
        [sys.executable, str(workflow.script)],
        cwd=workflow.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0),
        start_new_session=True,  # a process group of its own, suspended as a whole as Ctrl-Z suspends it
    )


def _age_locks(folder: Path) -> None:
    """Set the run's lock files two hours back."""
    old = time.time() - 7200
    for lock in [*folder.glob("task_files/.b2box/run.lock*"), *folder.glob("results/.b2box-run.lock*")]:
        os.utime(lock, (old, old))


def _run_on_worker(worker: Any, workflow: Workflow, steps: int) -> Any:
    python = worker.install_b2box()
    command = f"cd {workflow.folder} && FAULT_RUNS={workflow.runs} FAULT_N={steps} {python} faults.py"
    return worker.run(command, check=False, timeout=300)


@pytest.mark.slurm  # (the worker node is another host; its HTCondor and Slurm are not used)
def test_a_live_run_on_another_host_keeps_its_lock_whatever_the_clocks_say(worker: Any, shared_tmp: Path) -> None:
    workflow = Workflow(shared_tmp)
    run = _start_here(workflow, workflow.env(FAULT_N="1", FAULT_0="hang"))
    try:
        workflow.wait_until_hanging()
        _age_locks(shared_tmp)  # as a host whose clock is two hours ahead sees them
        other = _run_on_worker(worker, workflow, steps=1)
        assert other.returncode == 4, other.stderr
        assert f"pid {run.pid} on {socket.gethostname()}" in other.stderr
        assert workflow.runs_of() == Counter({0: 1}), "the other host started nothing"
    finally:
        run.kill()
        run.communicate(timeout=30)


@pytest.mark.slurm  # (the worker node is another host; its HTCondor and Slurm are not used)
def test_a_suspended_run_that_lost_its_lock_commits_and_starts_nothing_more(worker: Any, shared_tmp: Path) -> None:
    """Suspended beyond the watch, the run's lock is taken over by a run on another host; resumed, it finds out
    before its running task commits, and stops (exit 4) without starting anything more."""
    workflow = Workflow(shared_tmp)
    steps = {f"FAULT_{index}": "sleep:3" for index in range(6)}
    run = _start_here(workflow, workflow.env(FAULT_N="6", FAULT_WORKERS="1", **steps))
    workflow.wait_for_start(0)
    os.killpg(run.pid, signal.SIGSTOP)
    _age_locks(shared_tmp)  # as if suspended for two hours
    stopped_runs = workflow.runs_of()
    try:
        other = _run_on_worker(worker, workflow, steps=6)
        assert other.returncode == 0, other.stderr
        resumed = time.time()
    finally:
        os.killpg(run.pid, signal.SIGCONT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 4, stderr
    assert "lost its lock" in stderr
    runs = workflow.runs_of()
    assert runs == Counter({index: 1 + stopped_runs[index] for index in range(6)}), "nothing started after resuming"
    outputs = list(shared_tmp.glob("results/index=*/step.txt"))
    assert len(outputs) == 6 and not workflow.complete_looking()
    assert all(path.stat().st_mtime < resumed for path in outputs), "the resumed run committed nothing"


@pytest.mark.parametrize("content", ["", "{not json"], ids=["empty", "broken"])
def test_an_empty_or_broken_lock_file_is_taken_over_at_once(tmp_path: Path, content: str) -> None:
    workflow = Workflow(tmp_path / "wf")
    lock = workflow.folder / "task_files/.b2box/run.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(content)
    started = time.monotonic()
    done = workflow.run(env=workflow.env(FAULT_N="1"))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15, "no minute of waiting for a lock nobody holds"
    assert workflow.runs_of() == Counter({0: 1})


# ------------------------------------------------------------------------------------------------ leftovers


def test_a_killed_local_batch_submitter_leaves_no_job_server_folder(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**workflow.env(FAULT_N="1", FAULT_0="sleep:2"), "TMPDIR": str(scratch)}
    first = workflow.start("--batch", env=env)
    workflow.wait_for_start(0)
    assert list(scratch.glob("b2box-jobs-*")), "the job server's folder"
    first.kill()
    first.communicate(timeout=30)
    deadline = time.monotonic() + 30  # the server ends once its job ended, and takes its folder along
    while list(scratch.glob("b2box-jobs-*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(scratch.glob("b2box-jobs-*"))
    again = workflow.run("--batch", env=env)
    assert again.returncode == 0, again.stderr
    assert not list(scratch.glob("b2box-jobs-*")) and workflow.runs_of() == Counter({0: 1})


# ------------------------------------------------------------------------------------------------ secrets

SECRET = "s3cr3t-Value-that-must-stay-hidden"


@pytest.mark.docker
def test_a_docker_jobs_secrets_are_not_in_the_containers_configuration(tmp_path: Path, analysis_image: str) -> None:
    """`docker inspect` (and the engine's config.v2.json) show what a container was given: never a secret's value."""
    folder = tmp_path / "wf"
    env = {
        "API_TOKEN": SECRET,
        "FAULT_RUNS": str(folder / "runs.txt"),
        "FAULT_READY": str(folder / "ready"),
        "FAULT_0": "secret:hang",
    }  # fmt: skip (a container sees only the variables of the env setting)
    workflow = Workflow(folder, {"env": env, "image": analysis_image, "runtime": "docker"})
    run = workflow.start("--batch", env=workflow.env(FAULT_N="1", FAULT_0="secret:hang"))
    try:
        workflow.wait_until_hanging(timeout=120)
        names = subprocess.run(
            ["docker", "ps", "--filter", "name=b2box-", "--format", "{{.Names}}"], capture_output=True, text=True
        ).stdout.split()
        assert names, "the job's container runs"
        inspected = subprocess.run(["docker", "inspect", *names], capture_output=True, text=True).stdout
        assert SECRET not in inspected and "_B2BOX_SECRETS_FILE" in inspected
        assert (
            workflow.output(0).exists() is False
            and f"token of {len(SECRET)}" in next(folder.glob("results/index=0/.b2box-partial-*")).read_text()
        ), "the job read the secret"
        assert not list(workflow.secrets_dir.glob("*/*")), "the job removed its secrets file once read"
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
    assert run.returncode == 130
    assert not list(workflow.secrets_dir.iterdir()), "nor did its folder stay"


def test_variables_named_by_secret_env_are_secrets_too(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf", {"env": {"LAB_PIN": SECRET}, "secret_env": ["LAB_*"]})
    done = workflow.run("--batch", env=workflow.env(FAULT_N="1", FAULT_0="secret:LAB_PIN"))
    assert done.returncode == 0, done.stderr
    assert workflow.finished(0) == f"token of {len(SECRET)} characters"
    settings_file = workflow.folder / "settings.json"
    assert [path for path in workflow.files_containing(SECRET) if path != settings_file] == []


@pytest.mark.slurm
def test_the_secrets_of_a_job_cancelled_while_its_submitter_was_down_are_removed(worker: Any, shared_tmp: Path) -> None:
    workflow = pool_workflow(shared_tmp, "slurm", {"API_TOKEN": SECRET}, slurm_settings={"hold": True})
    python = worker.install_b2box()
    command = f"cd {shared_tmp}; FAULT_RUNS={workflow.runs} FAULT_N=1 nohup {python} faults.py --batch"
    worker.run(f"{command} > {shared_tmp}/first.log 2>&1 & echo $! > {shared_tmp}/first.pid", timeout=30)
    ledger = shared_tmp / "task_files/index=0/Step/batch_job.json"
    wait_for(ledger, timeout=120)
    assert list(workflow.secrets_dir.rglob("*.env")), "the held job's secrets wait for it"
    worker.run(f"kill -9 $(cat {shared_tmp}/first.pid)", check=False)
    worker.run(["scancel", json.loads(ledger.read_text())["job_id"].split("_")[0]], check=False)  # an admin
    again = worker.run(
        f"cd {shared_tmp} && FAULT_RUNS={workflow.runs} FAULT_N=1 {python} faults.py --batch", check=False, timeout=300
    )
    assert again.returncode == 1, again.stderr  # the cancelled job is a failure (retries: 0)
    assert not list(workflow.secrets_dir.rglob("*.env")), "its secrets file went with it"


# ------------------------------------------------------------------------------------------- what happened


def _removed_while_running(worker: Any, workflow: Workflow, folder: Path, remove: str) -> str:
    """Run the workflow on the worker node, remove its job with ``remove`` (the job id appended) once it runs;
    the run's stderr."""
    python = worker.install_b2box()
    log = folder / "run.log"
    worker.run(
        f"cd {folder}; FAULT_RUNS={workflow.runs} FAULT_N=1 nohup {python} faults.py --batch > {log} 2>&1 &",
        timeout=30,
    )
    workflow.wait_for_start(0, timeout=120)
    job_id = json.loads((folder / "task_files/index=0/Step/batch_job.json").read_text())["job_id"]
    worker.run(f"{remove} {job_id}", check=False)
    deadline = time.monotonic() + 120
    while "task(s) failed" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.3)
    return log.read_text()


@pytest.mark.parametrize(
    ("system", "remove", "expected"),
    [
        pytest.param("slurm", "scancel", "Slurm: CANCELLED", marks=pytest.mark.slurm),
        pytest.param("htcondor", "condor_rm", "HTCondor: removed via condor_rm (by user b2box)",
                     marks=pytest.mark.htcondor),
    ],
)  # fmt: skip
def test_a_job_removed_by_its_batch_system_is_reported_as_the_system_saw_it(
    worker: Any, shared_tmp: Path, system: str, remove: str, expected: str
) -> None:
    workflow = pool_workflow(shared_tmp, system, {"FAULT_0": "sleep:60"})
    said = _removed_while_running(worker, workflow, shared_tmp, remove)
    assert expected in said, said
    assert workflow.runs_of() == Counter({0: 1}) and not workflow.output(0).exists()


def test_a_local_job_killed_on_the_node_is_reported_with_its_signal(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    run = workflow.start("--batch", env=workflow.env(FAULT_N="1", FAULT_0="sleep:30"))
    workflow.wait_for_start(0)
    job_id = json.loads((workflow.folder / "task_files/index=0/Step/batch_job.json").read_text())["job_id"]
    os.killpg(int(job_id.split("-")[1]), signal.SIGKILL)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr
    assert "killed by signal SIGKILL" in stderr, stderr


@pytest.mark.docker
def test_ctrl_c_of_a_container_run_leaves_no_output_and_no_partial(tmp_path: Path, analysis_image: str) -> None:
    folder = tmp_path / "wf"
    env = {"FAULT_RUNS": str(folder / "runs.txt"), "FAULT_0": "sleep:8", "FAULT_1": "sleep:8"}
    workflow = Workflow(folder, {"env": env, "image": analysis_image, "runtime": "docker"})
    run = workflow.start(env=workflow.env(FAULT_N="2", FAULT_WORKERS="2"))
    workflow.wait_for_start(0, timeout=120)
    workflow.wait_for_start(1, timeout=120)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    time.sleep(10)  # the steps would have finished by now, had their containers been left running
    assert not workflow.output(0).exists() and not workflow.output(1).exists(), "nothing committed after the stop"
    assert not list(folder.glob("results/index=*/.b2box-partial-*")), "and no partial output stayed"
    again = workflow.run(env=workflow.env(FAULT_N="2"), timeout=300)
    assert again.returncode == 0, again.stderr
    assert not list(folder.glob("results/index=*/.b2box-partial-*"))


# ------------------------------------------------------------------------------------- kills at random moments

STEPS = 40  # in one wave: starting them takes long enough for kills to land between a job's start and its record
SLEEP = {f"FAULT_{index}": "sleep:3" for index in range(STEPS)}


def _steps_env(workflow: Workflow) -> dict[str, str]:
    return workflow.env(FAULT_N=str(STEPS), FAULT_WORKERS=str(STEPS), **SLEEP)


def _check_every_step_once(workflow: Workflow) -> None:
    assert workflow.runs_of() == Counter(dict.fromkeys(range(STEPS), 1)), "a step started twice"
    assert all(workflow.finished(index) == str(index) for index in range(STEPS))
    assert not workflow.complete_looking()
    assert not list(workflow.folder.glob("results/**/.b2box-partial-*")), "a partial output stayed"


@pytest.mark.slow
def test_a_local_batch_submitter_killed_at_random_moments_never_runs_a_step_twice(tmp_path: Path) -> None:
    """Twelve SIGKILLs at seeded random moments (building the graph, submitting, following the jobs), each followed
    by a new run that re-attaches; then a run to the end. No step started twice, no partial stayed."""
    rng = random.Random(23)
    workflow = Workflow(tmp_path / "wf")
    env = _steps_env(workflow)
    for _ in range(12):
        run = workflow.start("--batch", env=env)
        time.sleep(rng.uniform(0.2, 2.0))
        run.kill()
        run.communicate(timeout=30)
    final = workflow.run("--batch", env=env, timeout=300)
    assert final.returncode == 0, final.stderr
    _check_every_step_once(workflow)


@pytest.mark.slow
def test_a_local_batch_run_interrupted_at_random_moments_commits_nothing_after_it_stopped(tmp_path: Path) -> None:
    """Six Ctrl-Cs at seeded random moments: each time, nothing is committed once the run said it stopped."""
    rng = random.Random(29)
    workflow = Workflow(tmp_path / "wf")
    env = _steps_env(workflow)
    for _ in range(6):
        run = workflow.start("--batch", env=env)
        time.sleep(rng.uniform(0.3, 2.0))
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
        done = {path for path in workflow.folder.glob("results/index=*/step.txt")}
        time.sleep(4)  # longer than a step: a job left running would commit meanwhile
        assert set(workflow.folder.glob("results/index=*/step.txt")) == done, "a job committed after the stop"
    final = workflow.run("--batch", env=env, timeout=300)
    assert final.returncode == 0, final.stderr
    assert all(workflow.finished(index) == str(index) for index in range(STEPS))
    assert not list(workflow.folder.glob("results/**/.b2box-partial-*")), "a partial output stayed"


@pytest.mark.slurm
@pytest.mark.slow
def test_a_slurm_submitter_killed_at_random_moments_never_runs_a_step_twice(worker: Any, shared_tmp: Path) -> None:
    """Eight SIGKILLs at seeded random moments of a Slurm run whose controller answers a second after it queued an
    array (as busy ones do), then a run to the end: no step started twice."""
    rng = random.Random(31)
    workflow = pool_workflow(shared_tmp, "slurm", SLEEP, batch_workers=4)
    shims = flaky_command(worker, shared_tmp, "squeue", fails=0)
    real = worker.run(["bash", "-lc", "command -v sbatch"]).stdout.strip()
    (shims / "sbatch").write_text(SLOW_SBATCH.format(real=real, mark="/dev/null").replace("sleep 60", "sleep 1"))
    (shims / "sbatch").chmod(0o755)
    python = worker.install_b2box()
    command = f"cd {shared_tmp}; PATH={shims}:$PATH FAULT_RUNS={workflow.runs} FAULT_N={STEPS} nohup {python} faults.py"
    for attempt in range(8):
        worker.run(f"{command} --batch > run-{attempt}.log 2>&1 & echo $! > submitter.pid", timeout=30)
        time.sleep(rng.uniform(0.5, 4.0))
        worker.run(f"kill -9 $(cat {shared_tmp}/submitter.pid)", check=False)
    final = worker.run(
        f"cd {shared_tmp} && FAULT_RUNS={workflow.runs} FAULT_N={STEPS} {python} faults.py --batch",
        check=False,
        timeout=600,
    )
    assert final.returncode == 0, final.stderr
    _check_every_step_once(workflow)
