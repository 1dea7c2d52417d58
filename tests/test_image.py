"""The b2box Docker image (top-level Dockerfile) runs the README example, with CI-ready exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def b2box_image(docker_client) -> str:
    built = subprocess.run([str(REPO / "ci/build-image.sh"), "b2box:test"], capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, built.stderr
    return "b2box:test"


def docker_run(image: str, folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}",
                           "--volume", f"{folder}:{folder}", "--workdir", str(folder), image, *command],
                          capture_output=True, text=True, timeout=600)


def test_image_runs_the_example_and_gates_on_pending_work(b2box_image: str, tmp_path: Path) -> None:
    folder = tmp_path / "average"
    shutil.copytree(REPO / "examples/average", folder, ignore=shutil.ignore_patterns("results", "logs"))
    pending = docker_run(b2box_image, folder, "b2box", "run", "workflow.py", "--dry-run")
    assert pending.returncode == 1 and "Would run Average(count=100)" in pending.stdout
    ran = docker_run(b2box_image, folder, "b2box", "run", "workflow.py", "--workers", "2")
    assert ran.returncode == 0, ran.stderr
    assert (folder / "results/count=100/average.txt").stat().st_uid == os.getuid()
    finished = docker_run(b2box_image, folder, "b2box", "run", "workflow.py", "--dry-run")
    assert finished.returncode == 0 and "All tasks are finished!" in finished.stdout
    version = docker_run(b2box_image, folder, "b2box", "--version")
    assert version.returncode == 0 and "b2box" in version.stdout
