"""--batch with the local backend: every task through its wrapper, as its own process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_python

WORKFLOWS = Path(__file__).parent / "workflows"


def copy_workflow(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copy(WORKFLOWS / name, target)
    return target


def test_chain_in_batch_records_provenance_and_exit(tmp_path: Path) -> None:
    script = copy_workflow("chain.py", tmp_path / "wf")
    result = run_python(script, "--batch", "--workers", "2")
    assert result.returncode == 0, result.stderr
    logs = script.parent / "logs/index=1/Link"
    record = json.loads((logs / "provenance.json").read_text())
    assert record["task_family"] == "Link" and record["parameters"] == {"index": "1"}
    assert record["backend"] == "local" and record["job_id"].startswith("local-")
    assert record["exit_code"] == 0 and record["image"]["runtime"] == "none"
    assert record["start_time"] <= record["end_time"] and record["b2box_version"]
    assert json.loads((logs / "exit.json").read_text())["exit_code"] == 0
    wrapper = script.parent / "task_files/index=1/Link/job.sh"
    assert os.access(wrapper, os.X_OK) and (wrapper.stat().st_mode & 0o077) == 0
    assert "Chain" not in {p.name for p in (script.parent / "task_files").rglob("*")}, "wrappers run in-process"


def test_failing_job_reports_exit_code_and_log(tmp_path: Path) -> None:
    script = copy_workflow("chain.py", tmp_path / "wf")
    result = run_python(script, "--batch", env={"CHAIN_FAIL": "0"})
    assert result.returncode == 1
    stderr_log = script.parent / "logs/index=0/Link/stderr"
    assert str(stderr_log) in result.stderr
    assert "failed on purpose" in stderr_log.read_text()
    assert "exited with code 1" in result.stderr
    assert not (script.parent / "results/index=0/link.txt").exists()


def start_hanging_batch_run(tmp_path: Path, *flags: str) -> tuple[Path, subprocess.Popen[str], Path]:
    """A --batch run of the chain whose first job hangs; returns once that job's task is running."""
    script = copy_workflow("chain.py", tmp_path / "wf")
    ready = tmp_path / "ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith("B2BOX_")}
    env.update(CHAIN_HANG="0", CHAIN_READY=str(ready))
    # Ctrl-C must reach it even when pytest itself was started in the background (SIGINT ignored, inherited).
    process = subprocess.Popen(
        [sys.executable, str(script), "--batch", *flags],
        cwd=script.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    return script, process, ready


def test_job_killed_without_record_is_a_failure(tmp_path: Path) -> None:
    script, process, ready = start_hanging_batch_run(tmp_path)
    job = subprocess.run(["pgrep", "-f", "task_files/index=0/Link/job.sh"], capture_output=True, text=True)
    for pid in job.stdout.split():
        os.kill(int(pid), signal.SIGKILL)  # the wrapper itself dies: no exit record
    os.kill(int(ready.read_text()), signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "ended without writing" in stderr and "exit.json" in stderr
    assert not (script.parent / "results/index=0/link.txt").exists()


def test_interrupt_stops_running_jobs(tmp_path: Path) -> None:
    script, process, ready = start_hanging_batch_run(tmp_path)
    task_pid = int(ready.read_text())
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    left = subprocess.run(["pgrep", "-f", str(script.parent / "task_files")], capture_output=True, text=True)
    assert left.stdout.strip() == "", "job processes must be gone after Ctrl-C"
    assert not Path(f"/proc/{task_pid}").exists(), "the task's own process must be gone after Ctrl-C"
    assert not (script.parent / "results/index=0/link.txt").exists()


@pytest.mark.parametrize("batch", [False, True])
def test_hostile_values_round_trip_and_secrets_stay_out_of_logs(tmp_path: Path, batch: bool) -> None:
    folder = tmp_path / "dir with space $(x) `y` 'q' \"d\" ü"
    script = copy_workflow("quoting.py", folder)
    for marker in ("/tmp/b2box-injected", "/tmp/b2box-injected2"):
        if os.path.exists(marker):
            os.remove(marker)
    result = run_python(script, *(["--batch", "--workers", "3"] if batch else []))
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(WORKFLOWS))
    try:
        import quoting
    finally:
        sys.path.remove(str(WORKFLOWS))
    outputs = sorted(folder.glob("value=hashed_*/echo.json"))
    assert len(outputs) == len(quoting.NASTY)
    seen = {json.loads(path.read_text(encoding="utf-8"))["value"] for path in outputs}
    assert seen == set(quoting.NASTY)
    expected_env = quoting.NASTY[3] + quoting.NASTY[4] + quoting.NASTY[2]
    for path in outputs:
        data = json.loads(path.read_text(encoding="utf-8"))
        if batch:
            assert data["env"] == expected_env and data["secret_seen"] == "hunter2-secret"
    assert not os.path.exists("/tmp/b2box-injected") and not os.path.exists("/tmp/b2box-injected2")
    logged = [result.stdout, result.stderr]
    for log in folder.rglob("*"):
        if log.is_file() and log.name in ("stdout", "stderr", "provenance.json", "exit.json", "failure.log"):
            logged.append(log.read_text(encoding="utf-8", errors="replace"))
    assert not any("hunter2-secret" in text for text in logged)


def test_tasks_of_a_group_share_one_python_and_fail_alone(tmp_path: Path) -> None:
    """tasks_per_job: one Python for the group, a fork per task; a failing or crashing task is its own."""
    script = copy_workflow("grouped.py", tmp_path / "wf")
    folder = script.parent
    result = run_python(script, "--batch", env={"GROUP_N": "8", "GROUP_FAIL": "5", "GROUP_CRASH": "6"})
    assert result.returncode == 1
    pieces = {i: json.loads((folder / f"results/index={i}/piece.json").read_text()) for i in (0, 1, 2, 3, 4, 7)}
    assert len({pieces[i]["ppid"] for i in (0, 1, 2, 3)}) == 1, "the first four ran in one group Python"
    assert len({pieces[i]["pid"] for i in (0, 1, 2, 3)}) == 4, "each in a child of its own"
    exits = {i: json.loads((folder / f"logs/index={i}/Piece/exit.json").read_text())["exit_code"] for i in range(8)}
    assert exits == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 139, 7: 0}
    assert "piece 5 fails on purpose" in (folder / "logs/index=5/Piece/stderr").read_text()
    assert str(folder / "logs/index=6/Piece/stderr") in result.stderr
    assert not list(folder.glob("results/index=[56]/**/piece.json")), "no output of a failed task"
    jobs = {i: json.loads((folder / f"logs/index={i}/Piece/provenance.json").read_text())["job_id"] for i in (4, 7)}
    assert jobs[4] == jobs[7], "the second group is one job"
