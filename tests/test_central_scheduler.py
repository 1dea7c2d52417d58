"""The option to use a central luigid scheduler (a real luigid on loopback) keeps working."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_python
from tests.test_batch_local import start_hanging_batch_run

WORKFLOWS = Path(__file__).parent / "workflows"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "luigid"),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--state-path",
            str(tmp_path / "state.pickle"),
            "--logdir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and server.poll() is None, "luigid did not start"
            time.sleep(0.1)
    yield port
    server.terminate()
    server.wait(timeout=10)


def test_workflow_runs_through_central_scheduler(luigid: int, tmp_path: Path) -> None:
    script = tmp_path / "chain.py"
    shutil.copy(WORKFLOWS / "chain.py", script)
    ok = run_python(script, "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "results/index=2/link.txt").read_text() == "partial 2"
    assert not list((tmp_path / "results").rglob(".b2box-partial-*")), "staged outputs were moved into place"


def test_failure_through_central_scheduler_exits_nonzero_without_output(luigid: int, tmp_path: Path) -> None:
    script = tmp_path / "chain.py"
    shutil.copy(WORKFLOWS / "chain.py", script)
    failed = run_python(
        script, "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid), env={"CHAIN_FAIL": "1"}
    )
    assert failed.returncode == 1
    assert (tmp_path / "results/index=0/link.txt").exists()
    assert not (tmp_path / "results/index=1/link.txt").exists()
    assert not list((tmp_path / "results").rglob(".b2box-partial-*")), "a failed run leaves no partial files"


def luigid_tasks(port: int, status: str) -> dict[str, dict[str, Any]]:
    """luigid's own view: its task_list API, as the visualiser reads it."""
    body = urllib.parse.urlencode({"data": json.dumps({"status": status, "upstream_status": ""})}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list", data=body, timeout=10) as answer:
        return dict(json.loads(answer.read())["response"])


def test_batch_run_shows_every_task_state_in_luigid(luigid: int, tmp_path: Path) -> None:
    script = tmp_path / "chain.py"
    shutil.copy(WORKFLOWS / "chain.py", script)
    central = ("--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid))
    failed = run_python(script, "--batch", *central, env={"CHAIN_FAIL": "1", "B2BOX_BATCH_SYSTEM": "local"})
    assert failed.returncode == 1, failed.stderr
    assert (tmp_path / "logs/index=0/Link/provenance.json").exists(), "the tasks ran as batch jobs"
    done = luigid_tasks(luigid, "DONE")
    assert [task["params"] for task in done.values() if task["name"] == "Link"] == [{"index": "0"}]
    failures = luigid_tasks(luigid, "FAILED")
    assert [(task["name"], task["params"]) for task in failures.values()] == [("Link", {"index": "1"})]
    pending = {task["name"] for task in luigid_tasks(luigid, "PENDING").values()}
    assert pending == {"Link", "Chain"}, "the tasks waiting on the failure stay pending there"

    repaired = run_python(script, "--batch", *central, env={"B2BOX_BATCH_SYSTEM": "local"})
    assert repaired.returncode == 0, repaired.stderr
    assert not luigid_tasks(luigid, "FAILED") and not luigid_tasks(luigid, "PENDING")
    finished = {(task["name"], tuple(task["params"].items())) for task in luigid_tasks(luigid, "DONE").values()}
    assert finished == {("Link", (("index", str(i)),)) for i in range(3)} | {("Chain", (("length", "3"),))}


def test_unreachable_luigid_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    script = tmp_path / "chain.py"
    shutil.copy(WORKFLOWS / "chain.py", script)
    port = str(free_port())
    refused = run_python(script, "--batch", "--scheduler-host", "127.0.0.1", "--scheduler-port", port)
    assert refused.returncode == 2
    assert f"luigid) at http://127.0.0.1:{port} does not answer" in refused.stderr
    assert "--scheduler-host" in refused.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "task_files").exists(), "nothing ran"


def test_batch_run_shows_running_jobs_live(luigid: int, tmp_path: Path) -> None:
    central = ("--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid))
    _, process, _ = start_hanging_batch_run(tmp_path, *central)
    try:
        deadline = time.monotonic() + 30
        while not luigid_tasks(luigid, "RUNNING"):
            assert time.monotonic() < deadline, "luigid never heard that the first job runs"
            time.sleep(0.2)
        running = luigid_tasks(luigid, "RUNNING")
        assert [(task["name"], task["params"]) for task in running.values()] == [("Link", {"index": "0"})]
        assert sorted(task["name"] for task in luigid_tasks(luigid, "PENDING").values()) == ["Chain", "Link", "Link"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
