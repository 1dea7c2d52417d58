"""The fault suite: each fault b2box promises to survive, injected on the real pieces.

For every fault the same four things are checked: no output is lost, no task runs twice, nothing looks complete
that is not, and the exit code is the one the README documents (0 done, 1 a task failed, 4 another run holds the
workflow, 75 a batch system stopped answering, 130 interrupted). The local backend and local runs are faulted on
this machine; HTCondor and Slurm on the testbed's worker node (a status command that fails, a hold). Secrets are
checked in every file the run leaves. ``benchmarks/faults.py`` runs this module and writes the list of faults
tried and survived to ``benchmarks/results/faults.json``.
"""

from __future__ import annotations

import json
import os
import re
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
from b2box.batch.backends.htcondor import HTCondorSettings, refusal
from b2box.errors import TaskDefinitionError

WORKFLOWS = Path(__file__).parent / "workflows"
SECRET = "s3cr3t-Value-that-must-stay-hidden"
OTHER_SECRET = "an0ther-Hidden-passw0rd"


class Workflow:
    """tests/workflows/faults.py in a folder of its own, with helpers to run, fault and inspect it."""

    def __init__(self, folder: Path, settings: dict[str, Any] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.script = folder / "faults.py"
        shutil.copy(WORKFLOWS / "faults.py", self.script)
        self.runs = folder / "runs.txt"
        self.ready = folder / "ready"
        self.secrets_dir = folder / "secrets"
        base = {"result_dir": "results", "batch_poll_interval": 0.2, "secrets_dir": str(self.secrets_dir)}
        (folder / "settings.json").write_text(json.dumps({**base, **(settings or {})}))

    def env(self, **faults: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("B2BOX_", "FAULT_"))}
        env.update(FAULT_RUNS=str(self.runs), FAULT_READY=str(self.ready), **faults)
        return env

    def start(self, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(self.script), *args],
            cwd=self.folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def run(self, *args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.script), *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def runs_of(self) -> Counter[int]:
        """How often each step started."""
        if not self.runs.exists():
            return Counter()
        return Counter(int(line.split()[0]) for line in self.runs.read_text().splitlines() if line.strip())

    def output(self, index: int) -> Path:
        return self.folder / f"results/index={index}/step.txt"

    def finished(self, index: int) -> str:
        """What step ``index`` finished with (its output's last line), or empty when it has no output."""
        path = self.output(index)
        return path.read_text().splitlines()[-1].removeprefix("finished ") if path.exists() else ""

    def wait_for_start(self, index: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.runs_of()[index] == 0:
            assert time.monotonic() < deadline, f"step {index} never started"
            time.sleep(0.05)

    def wait_until_hanging(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while not self.ready.exists() or not self.ready.read_text():
            assert time.monotonic() < deadline, "the hanging step never started"
            time.sleep(0.05)
        return int(self.ready.read_text())

    def files_containing(self, *texts: str) -> list[Path]:
        found = []
        for path in [*self.folder.rglob("*"), *Path(self.secrets_dir).rglob("*")]:
            if path.is_file() and not path.is_symlink():
                content = path.read_bytes()
                if any(text.encode() in content for text in texts):
                    found.append(path)
        return found

    def complete_looking(self) -> list[Path]:
        """Outputs under their final names that a step did not finish, and identity records of outputs that are not
        there: there must never be any."""
        steps = self.folder.glob("results/index=*/step.txt")
        unfinished = [path for path in steps if "finished" not in path.read_text()]
        unfounded = []
        for record in self.folder.glob("results/**/.b2box-identity-*.json"):
            if not all((record.parent / name).exists() for name in json.loads(record.read_text())["outputs"]):
                unfounded.append(record)
        return unfinished + unfounded

    def identity(self, index: int) -> dict[str, Any] | None:
        """The identity record kept beside step ``index``'s output (None: there is none)."""
        path = self.folder / f"results/index={index}/.b2box-identity-step.txt.json"
        return json.loads(path.read_text()) if path.exists() else None


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def wait_gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def python_children(pid: int) -> list[int]:
    """The forked Python children of ``pid`` (the job server, workers), not its bash wrappers."""
    result = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                command = handle.read().split(b"\0")[0]
        except OSError:  # it ended after it was listed (a step's wrapper that just finished): not a child any more
            continue
        if b"python" in command:
            result.append(child)
    return result


# --------------------------------------------------------------------------------------------- the local backend


def test_killed_submitter_local_job_is_reattached_not_run_again(tmp_path: Path) -> None:
    """Killing ``b2box run --batch`` (SIGKILL) leaves its local jobs running; the next run re-attaches to them."""
    workflow = Workflow(tmp_path / "wf")
    env = workflow.env(FAULT_N="2", FAULT_0="sleep:4")
    first = workflow.start("--batch", env=env)
    workflow.wait_for_start(0)
    first.kill()
    first.communicate(timeout=30)
    second = workflow.run("--batch", env=env)
    assert second.returncode == 0, second.stderr
    # the sleeping step for sure; the other one too when it had not ended yet (a loaded machine)
    assert re.search(r"re-attached to [12] job\(s\)", second.stderr), second.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1}), "no step ran twice"
    assert workflow.finished(0) == "0" and not workflow.complete_looking()
    assert workflow.identity(0)["outputs"] == ["step.txt"], "the job kept the identity it was submitted with"
    assert "0 to run" in workflow.run("--batch", env=env).stderr, "the one the next run expects"


def test_killed_job_server_fails_its_task_once_instead_of_running_it_again(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    run = workflow.start("--batch", env=workflow.env(FAULT_N="2", FAULT_0="hang"))
    task = workflow.wait_until_hanging()
    deadline = time.monotonic() + 60  # the other step commits first (on a busy machine it may still be running)
    while workflow.finished(1) != "1":
        assert time.monotonic() < deadline, "step 1 never finished"
        time.sleep(0.05)
    servers = python_children(run.pid)
    assert len(servers) == 1, "one job server, forked from the submitter"
    os.kill(servers[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=90)
    assert run.returncode == 1, stderr
    assert "job server stopped while this task ran" in stderr
    assert wait_gone(task), "the task went down with its job server"
    assert workflow.runs_of()[0] == 1, "the task was not started a second time"
    assert not workflow.output(0).exists() and workflow.finished(1) == "1"
    assert workflow.identity(0) is None and workflow.identity(1) is not None, "a killed job keeps no identity"


def test_keep_jobs_leaves_local_jobs_running_and_the_next_run_reattaches(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    env = workflow.env(FAULT_N="1", FAULT_0="sleep:4")
    first = workflow.start("--batch", "--keep-jobs", env=env)
    workflow.wait_for_start(0)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stderr
    assert "left running (--keep-jobs)" in stderr and "were stopped" not in stderr
    second = workflow.run("--batch", env=env)
    assert second.returncode == 0, second.stderr
    assert "re-attached to 1 job(s)" in second.stderr
    assert workflow.runs_of() == Counter({0: 1}) and workflow.finished(0) == "0"


def test_killed_job_is_a_failure_and_its_retry_runs_it_once_more(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf", {"retries": 1})
    run = workflow.start("--batch", env=workflow.env(FAULT_N="1", FAULT_0="hang"))
    os.kill(workflow.wait_until_hanging(), signal.SIGKILL)
    workflow.ready.unlink()
    task = workflow.wait_until_hanging()  # the retry hangs again: stop the run there
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "retry 1 of 1" in stderr and wait_gone(task)
    assert workflow.runs_of() == Counter({0: 2}) and not workflow.output(0).exists()
    assert workflow.identity(0) is None, "a job killed before its commit keeps no identity"


# ------------------------------------------------------------------------------------------------- local runs


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_a_local_run_stops_every_worker(tmp_path: Path, stop: signal.Signals) -> None:
    workflow = Workflow(tmp_path / "wf")
    run = workflow.start(env=workflow.env(FAULT_WORKERS="2", FAULT_N="1", FAULT_0="hang"))
    task = workflow.wait_until_hanging()
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 130, stderr
    assert wait_gone(task), "the worker running the task is gone"
    time.sleep(1)
    assert not workflow.output(0).exists(), "nothing was committed after the run stopped"
    assert not list(workflow.folder.glob("results/index=0/.b2box-partial-*")), "its partial output was discarded"


def test_crashing_tasks_fail_alone_even_with_one_worker(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    done = workflow.run(env=workflow.env(FAULT_WORKERS="1", FAULT_N="3", FAULT_0="os_exit", FAULT_1="segfault"))
    assert done.returncode == 1, done.stderr
    assert "os._exit" in done.stderr and "SIGSEGV" in done.stderr
    assert "2 task(s) failed" in done.stderr
    assert workflow.finished(2) == "2" and not workflow.output(0).exists() and not workflow.output(1).exists()
    assert workflow.runs_of() == Counter({0: 1, 1: 1, 2: 1})


def test_second_run_is_refused_while_the_first_runs_and_takes_over_when_it_died(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf")
    first = workflow.start(env=workflow.env(FAULT_N="1", FAULT_0="hang"))
    task = workflow.wait_until_hanging()
    second = workflow.run(env=workflow.env(FAULT_N="1"))
    assert second.returncode == 4, second.stderr
    assert f"pid {first.pid} on {socket.gethostname()}" in second.stderr
    first.kill()
    first.communicate(timeout=30)
    assert wait_gone(task), "the killed run's worker died with it"
    third = workflow.run(env=workflow.env(FAULT_N="1"))
    assert third.returncode == 0, third.stderr
    assert workflow.runs_of() == Counter({0: 2}), "the first start was killed before it finished; one more start"
    assert workflow.finished(0) == "0"


def test_stale_partials_of_a_task_are_removed_when_it_runs_again(tmp_path: Path) -> None:
    """A partial stands in for one output of one task: when that task starts, a partial of its output was left by
    an attempt that died. Partials of other outputs in the same folder belong to other tasks and stay."""
    workflow = Workflow(tmp_path / "wf")
    folder = workflow.folder / "results/index=0"
    folder.mkdir(parents=True)
    stale = [folder / ".b2box-partial-0123456789ab-0-step.txt", folder / ".b2box-partial-ba9876543210-17-step.txt"]
    for path in stale:
        path.write_text("partial ")
    other = folder / ".b2box-partial-0123456789ab-1-other-step.txt"
    other.write_text("partial of another task's output")
    done = workflow.run(env=workflow.env(FAULT_N="1"))
    assert done.returncode == 0, done.stderr
    assert not any(path.exists() for path in stale) and other.exists()


# --------------------------------------------------------------------------------------------------- disks


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_log_disk_does_not_fail_a_job_whose_outputs_are_complete(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf", {"log_dir": str(tmp_path / "full")})
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={full}/filler", "bs=4k", "count=64"], capture_output=True)
        done = workflow.run("--batch", env=workflow.env(FAULT_N="2"))
        assert done.returncode == 0, done.stderr
        assert workflow.finished(0) == "0" and workflow.finished(1) == "1"
        assert not list(full.glob("index=*/Step/exit.json")), "the exit records really could not be written"
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_log_folder_that_cannot_be_written_is_an_error_naming_the_task(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf", {"log_dir": "/dev/null/logs"})
    done = workflow.run("--batch", env=workflow.env(FAULT_N="1"))
    assert done.returncode == 1, done.stderr
    assert "Step_0_" in done.stderr and "cannot write the job's files" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------------- hostile values


class Escaping(b2luigi.Task):
    where = b2luigi.Parameter()
    use_parameter_name_in_output = False

    def output(self):
        yield self.add_to_output("out.txt")


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_parameter_values_that_would_escape_result_dir_are_refused(value: str) -> None:
    with pytest.raises(TaskDefinitionError, match=r"Escaping: parameter where="):
        list(Escaping(where=value).output())


@pytest.mark.parametrize(
    ("job_name", "settings"),
    [("two\nlines", {}), ("name", {"request_memory": "2 GB\nqueue 1000"}), ("name", {"+X\ny": "1"})],
)
def test_line_breaks_never_reach_a_submit_file(job_name: str, settings: dict[str, str]) -> None:
    batch = HTCondorSettings(htcondor_settings=settings, htcondor_container="wrapper")
    assert "line break" in refusal(batch, job_name=job_name)


# ------------------------------------------------------------------------------------------------------ secrets


def test_secrets_reach_the_job_and_no_file(tmp_path: Path) -> None:
    workflow = Workflow(tmp_path / "wf", {"env": {"API_TOKEN": SECRET}})
    env = workflow.env(FAULT_N="2", FAULT_0="secret", B2BOX_DB_PASSWORD=OTHER_SECRET)
    done = workflow.run("--batch", env=env)
    assert done.returncode == 0, done.stderr
    assert workflow.finished(0) == f"token of {len(SECRET)} characters"
    settings_file = workflow.folder / "settings.json"
    assert [path for path in workflow.files_containing(SECRET, OTHER_SECRET) if path != settings_file] == []
    assert list(workflow.secrets_dir.iterdir()) == [], "each job removed its secrets file"
    assert SECRET not in done.stderr + done.stdout and OTHER_SECRET not in done.stderr + done.stdout


@pytest.mark.docker
def test_secrets_reach_a_job_in_docker_by_name_only(tmp_path: Path, analysis_image: str) -> None:
    env = {"API_TOKEN": SECRET, "FAULT_RUNS": str(tmp_path / "wf/runs.txt"), "FAULT_0": "secret"}
    workflow = Workflow(tmp_path / "wf", {"env": env, "image": analysis_image, "runtime": "docker"})
    done = workflow.run("--batch", env=workflow.env(FAULT_N="1"), timeout=300)
    assert done.returncode == 0, done.stderr
    assert workflow.finished(0) == f"token of {len(SECRET)} characters"
    wrapper = (workflow.folder / "task_files/index=0/Step/job.sh").read_text()
    assert "--env _B2BOX_SECRETS_FILE=" in wrapper and "API_TOKEN" not in wrapper.replace("# API_TOKEN", "")
    settings_file = workflow.folder / "settings.json"
    assert [path for path in workflow.files_containing(SECRET) if path != settings_file] == []
    assert list(workflow.secrets_dir.iterdir()) == []


# ------------------------------------------------------------------------------- HTCondor and Slurm on the testbed

FLAKY = """#!/bin/bash
# A busy batch system: the first {fails} calls of {name} fail the way a timed-out controller makes them fail.
calls={folder}/{name}.calls
done=$(cat "$calls" 2>/dev/null || echo 0)
echo $((done + 1)) > "$calls"
if [ "$done" -lt {fails} ]; then
    echo "{message}" >&2
    exit 1
fi
exec {real} "$@"
"""
MESSAGES = {
    "squeue": "slurm_load_jobs error: Socket timed out on send/recv operation",
    "condor_q": "-- Failed to fetch ads from: <127.0.0.1:9618> : Connection refused",
}


def flaky_command(worker: Any, folder: Path, name: str, fails: int) -> Path:
    """A folder to put first on PATH, holding a ``name`` that fails ``fails`` times, then runs the real one."""
    shims = folder / "shims"
    shims.mkdir(exist_ok=True)
    real = worker.run(["bash", "-lc", f"command -v {name}"]).stdout.strip()
    script = shims / name
    script.write_text(FLAKY.format(fails=fails, name=name, folder=shims, message=MESSAGES[name], real=real))
    script.chmod(0o755)
    (shims).chmod(0o777)
    return shims


def run_faults_in_pool(worker: Any, workflow: Workflow, shims: Path | None, steps: int = 2) -> Any:
    python = worker.install_b2box()
    path = f"PATH={shims}:$PATH " if shims else ""
    command = f"cd {workflow.folder} && {path}FAULT_RUNS={workflow.runs} FAULT_N={steps} {python} faults.py --batch"
    return worker.run(command, check=False, timeout=600)


def pool_workflow(folder: Path, system: str, faults: dict[str, str] | None = None, **settings: Any) -> Workflow:
    """The workflow in the shared folder; its jobs get FAULT_RUNS (and ``faults``) through the env setting."""
    extra = {"htcondor_interface": "cli"} if system == "htcondor" else {}
    env = {"FAULT_RUNS": str(folder / "runs.txt"), **(faults or {})}
    workflow = Workflow(folder, {"batch_system": system, "batch_poll_interval": 0.5, "env": env, **extra, **settings})
    for path in (workflow.folder, workflow.script):
        path.chmod(0o777 if path.is_dir() else 0o666)
    return workflow


@pytest.mark.htcondor
@pytest.mark.slurm
@pytest.mark.parametrize(("system", "query"), [("slurm", "squeue"), ("htcondor", "condor_q")])
def test_status_query_that_fails_is_retried(worker: Any, shared_tmp: Path, system: str, query: str) -> None:
    workflow = pool_workflow(shared_tmp, system)
    done = run_faults_in_pool(worker, workflow, flaky_command(worker, shared_tmp, query, fails=3))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("status query failed") == 3 and "try 2 in 1 s" in done.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1}) and workflow.finished(1) == "1"


@pytest.mark.slurm
def test_outage_beyond_the_limit_stops_with_75_and_the_next_run_reattaches(worker: Any, shared_tmp: Path) -> None:
    workflow = pool_workflow(shared_tmp, "slurm", {"FAULT_0": "sleep:3"}, batch_retry_limit=3)
    stopped = run_faults_in_pool(worker, workflow, flaky_command(worker, shared_tmp, "squeue", fails=10**6))
    assert stopped.returncode == 75, stopped.stderr
    assert "slurm did not answer" in stopped.stderr and "left queued or running" in stopped.stderr
    assert len(list(shared_tmp.glob("task_files/index=*/Step/batch_job.json"))) == 2, "their ids are kept"
    again = run_faults_in_pool(worker, workflow, None)
    assert again.returncode == 0, again.stderr
    assert "re-attached" in again.stderr or "collecting 2 job(s)" in again.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1}), "nothing was submitted twice"


@pytest.mark.slurm
def test_slurm_user_hold_is_reported_and_waited_for(worker: Any, shared_tmp: Path) -> None:
    workflow = pool_workflow(shared_tmp, "slurm", slurm_settings={"hold": True})
    python = worker.install_b2box()
    log = shared_tmp / "scheduler.log"
    worker.run(
        f"cd {shared_tmp} && FAULT_RUNS={workflow.runs} FAULT_N=1 nohup {python} faults.py --batch > {log} 2>&1 & "
        f"echo $! > {shared_tmp}/scheduler.pid",
        timeout=30,
    )
    try:
        deadline = time.monotonic() + 120
        while "held by its user" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
            time.sleep(0.2)
        assert "scontrol release 1" in log.read_text() or "scontrol release" in log.read_text()
        assert workflow.runs_of() == Counter(), "a held job does not run"
        while "done 2/2" not in log.read_text():  # release every held job (the total is submitted held too)
            assert time.monotonic() < deadline + 60, log.read_text()
            held = worker.run(["squeue", "--noheader", "--format=%i", "--states=PENDING"], check=False).stdout
            if held.split():
                worker.run(["scontrol", "release", *held.split()], check=False)
            time.sleep(0.5)
        assert workflow.runs_of() == Counter({0: 1}) and workflow.finished(0) == "0"
    finally:
        worker.run(f"kill $(cat {shared_tmp}/scheduler.pid)", check=False)  # removes its jobs, if any are left
