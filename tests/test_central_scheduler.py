"""The option to use a central luigid scheduler (a real luigid on loopback) keeps working."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_python

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
