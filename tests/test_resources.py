"""What every job used (wall time, CPU time, peak memory) and jobs killed for memory, on real Docker and here.

The tasks (tests/workflows/hungry.py) touch, burn and sleep known amounts; their provenance must say so within
20 %. A job held to less memory than it touches is killed by the kernel's OOM killer in its Docker container: the
run names it "killed for memory" with what it used and what it requested, and with ``memory_growth`` it comes back
asking for more and succeeds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from b2box.batch.memory import grown_request, with_request
from b2box.settings.sizes import human_size, parse_size
from tests.conftest import run_b2box

WORKFLOWS = Path(__file__).parent / "workflows"
MB = 2**20


def hungry(folder: Path, settings: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "hungry.py"
    shutil.copy(WORKFLOWS / "hungry.py", script)
    (folder / "settings.json").write_text(json.dumps({"batch_system": "local", **settings}))
    return script


def provenance(folder: Path, mb: int, name: str = "provenance.json") -> dict[str, Any]:
    found = list((folder / "logs").glob(f"**/mb={mb}/**/{name}"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def close(measured: float, expected: float) -> bool:
    return abs(measured - expected) <= 0.2 * expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="bare"),
        pytest.param({"tasks_per_job": 2}, id="group"),
        pytest.param({"runtime": "docker", "image": "ANALYSIS"}, id="docker", marks=pytest.mark.docker),
    ],
)
def test_every_job_records_what_it_used(tmp_path: Path, settings: dict[str, Any], request: Any) -> None:
    if settings.get("image") == "ANALYSIS":
        settings = {**settings, "image": request.getfixturevalue("analysis_image")}
    script = hungry(tmp_path, settings)
    done = run_b2box("run", str(script), "--batch", "--Several-sizes", "[500, 100]", "--Several-cpu", "3",
                     "--Several-sleep", "1", cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for mb in (500, 100):
        agrees_with_the_task(tmp_path, mb)


def agrees_with_the_task(folder: Path, mb: int) -> None:
    """The job's record says what the task measured itself (its run() took most of the job), within 20 %."""
    record = provenance(folder, mb)
    used = record["usage"]
    task = json.loads(next(folder.glob(f"**/mb={mb}/**/done.txt")).read_text())
    assert close(used["cpu_s"], task["cpu_s"]), (used, task)
    assert close(used["wall_s"], task["wall_s"]), (used, task)
    assert close(used["peak_rss_bytes"], task["peak_rss_bytes"]), (used, task)
    assert mb * MB < used["peak_rss_bytes"], used
    assert used["queue_wait_s"] >= 0
    assert record["attempt"] == 1 and record["exit_code"] == 0


@pytest.mark.docker
@pytest.mark.slow
def test_a_docker_job_killed_for_memory_comes_back_with_more(tmp_path: Path, analysis_image: str) -> None:
    settings = {"runtime": "docker", "image": analysis_image, "request_memory": "200 MB", "memory_growth": 2}
    script = hungry(tmp_path, settings)
    done = run_b2box("run", str(script), "--batch", cwd=tmp_path, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "killed for memory: used 2" in said and "requested 200 MB" in said and "resubmitted with 400 MB" in said
    first = provenance(tmp_path, 300, "provenance.attempt-1.json")
    assert first["exit_cause"] == "memory" and first["request_memory_bytes"] == 200 * MB
    assert first["usage"]["cgroup_peak_bytes"] <= 200 * MB
    last = provenance(tmp_path, 300)
    assert last["attempt"] == 2 and last["request_memory_bytes"] == 400 * MB and last["exit_code"] == 0
    assert (tmp_path / "mb=300" / "done.txt").exists() or list(tmp_path.glob("**/mb=300/**/done.txt"))


@pytest.mark.docker
@pytest.mark.slow
def test_without_memory_growth_a_kill_for_memory_is_named_and_nothing_is_left(
    tmp_path: Path, analysis_image: str
) -> None:
    script = hungry(tmp_path, {"runtime": "docker", "image": analysis_image, "request_memory": "200 MB"})
    done = run_b2box("run", str(script), "--batch", cwd=tmp_path, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "killed for memory: used" in said and "requested 200 MB" in said, said
    assert not list(tmp_path.glob("**/done.txt")) and not list(tmp_path.glob("**/.b2box-partial*"))
    failure = next((tmp_path / "logs").glob("**/failure.log")).read_text()
    assert "killed for memory" in failure


def test_sizes_are_read_as_batch_systems_count_them() -> None:
    assert parse_size("2 GB") == parse_size("2G") == parse_size("2048") == parse_size(2048) == 2 * 2**30
    assert parse_size("512 MiB") == 512 * MB and parse_size("1.5GB") == int(1.5 * 2**30)
    for wrong in ("two", "0", "-1 GB", True):
        with pytest.raises(ValueError):
            parse_size(wrong)
    assert human_size(4.3 * 2**30) == "4.3 GB" and human_size(310 * MB) == "310 MB" and human_size(None) == "?"


class _Task:
    task_family = "Fit"

    def __init__(self, **settings: Any) -> None:
        for key, value in settings.items():
            setattr(self, key, value)
        self.task_id = "Fit_1"


def test_a_request_grows_by_memory_growth_up_to_max_memory() -> None:
    task = _Task(request_memory="1 GB", memory_growth=2.0, max_memory="3 GB")
    assert grown_request(task, 2**30, 2**30) == 2 * 2**30
    assert grown_request(task, 2 * 2**30, None) == 3 * 2**30  # capped
    assert grown_request(task, 3 * 2**30, None) is None  # nothing left to grow
    assert grown_request(_Task(request_memory="1 GB"), 2**30, None) is None  # no memory_growth: no growth
    unasked = _Task(memory_growth=1.5)
    assert grown_request(unasked, None, 400 * MB) == 600 * MB  # no request: grown from what it used
    assert grown_request(unasked, None, None) is None


def test_a_batch_system_s_own_memory_option_wins_with_a_warning() -> None:
    task = _Task()
    added = with_request(task, 2 * 2**30, {"partition": "short"}, ("mem",), ("mem", "2048M"), "slurm_settings")
    assert added == {"partition": "short", "mem": "2048M"}
    with pytest.warns(UserWarning, match=r"Fit: slurm_settings 'mem' = '8G' wins over request_memory \(2.0 GB\)"):
        kept = with_request(task, 2 * 2**30, {"mem": "8G"}, ("mem",), ("mem", "2048M"), "slurm_settings")
    assert kept == {"mem": "8G"}
    assert with_request(task, None, {"a": 1}, ("mem",), ("mem", "1M"), "slurm_settings") == {"a": 1}


@pytest.mark.slow
@pytest.mark.parametrize("system", [pytest.param("slurm", marks=pytest.mark.slurm),
                                    pytest.param("htcondor", marks=pytest.mark.htcondor)])  # fmt: skip
def test_on_the_pool_a_job_killed_for_memory_comes_back_with_more(worker: Any, shared_tmp: Path, system: str) -> None:
    """The testbed's Slurm (task/cgroup) and HTCondor (HOLD_IF_MEMORY_EXCEEDED) hold jobs to their request."""
    settings = {"batch_system": system, "request_memory": "200 MB", "memory_growth": 2, "batch_poll_interval": 0.5}
    script = hungry(shared_tmp, settings)
    python = worker.install_b2box()
    done = worker.run([python, str(script), "--batch", "--Several-sizes", "[300, 100]", "--Several-cpu", "3",
                       "--Several-sleep", "3"], cwd=shared_tmp, check=False, timeout=600)  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "killed for memory" in said and "requested 200 MB" in said and "resubmitted with 400 MB" in said, said
    first = provenance(shared_tmp, 300, "provenance.attempt-1.json")
    assert first["request_memory_bytes"] == 200 * MB and "killed for memory" in first["outcome"]
    last = provenance(shared_tmp, 300)
    assert last["attempt"] == 2 and last["request_memory_bytes"] == 400 * MB and last["exit_code"] == 0
    agrees_with_the_task(shared_tmp, 100)  # never over its request: what it used, as measured in the job
    assert provenance(shared_tmp, 100)["backend"] == system


def _parent_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1])


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or " Z " in Path(f"/proc/{pid}/stat").read_text():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_the_task_never_outlives_its_watcher(tmp_path: Path, signal_name: str) -> None:
    """The job's first Python waits for the task it forked: killed (SIGKILL), it takes the task along (the kernel
    kills the task when its parent dies); stopped (SIGTERM, as batch systems stop a job), it hands the signal on;
    interrupted (SIGINT to the job's process group, as LSF and Ctrl-C send it), it records how the task ended. Either
    way nothing is committed, and the run names the job's end."""
    shutil.copy(WORKFLOWS / "sleeper.py", tmp_path)
    (tmp_path / "setup.sh").write_text("export SLEEPER=1\n")  # an env_script: the job starts its own Python
    (tmp_path / "settings.json").write_text(json.dumps({"batch_system": "local", "env_script": "setup.sh"}))
    run = subprocess.Popen([sys.executable, "-m", "b2box.cli", "run", "sleeper.py", "--batch"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        pid_file = tmp_path / "task.pid"
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        task = int(pid_file.read_text())
        watcher = _parent_of(task)
        assert "python" in Path(f"/proc/{watcher}/cmdline").read_text(), "the task's parent is the job's first Python"
        if signal_name == "SIGINT":
            os.killpg(os.getpgid(watcher), signal.SIGINT)
        else:
            os.kill(watcher, getattr(signal, signal_name))
        assert _gone(task, 10), "the task outlived its job"
        said, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode != 0 and "failed" in said.lower(), said
    assert not list(tmp_path.glob("**/woke.txt")) and not list(tmp_path.glob("**/.b2box-partial*"))
    if signal_name == "SIGINT":  # the watcher lived on and said how the task ended
        record = json.loads(next(tmp_path.glob("logs/**/provenance.json")).read_text())
        assert record["exit_code"] != 0 and "usage" in record, record
        assert "KeyboardInterrupt" not in next(tmp_path.glob("logs/**/stderr")).read_text().split("Sleeper")[0]
