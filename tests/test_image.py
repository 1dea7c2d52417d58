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
    built = subprocess.run([str(REPO / "ci/build-image.sh"), "b2box:test"], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    return "b2box:test"


def docker_run(image: str, folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            f"{os.getuid()}:{os.getgid()}",
            "--volume",
            f"{folder}:{folder}",
            "--workdir",
            str(folder),
            image,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


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


PIPELINES = REPO / "ci" / "pipelines"


def pipeline_commands(path: Path) -> list[str]:
    """The b2box commands a pipeline definition runs, in order (``- b2box …`` / ``- run: b2box …`` lines)."""
    commands = []
    for line in path.read_text().splitlines():
        text = line.strip().removeprefix("- ").removeprefix("run: ")
        if text.startswith("b2box run"):
            commands.append(text)
    return commands


@pytest.mark.parametrize("definition", ["gitlab-ci.yml", "github-actions.yml"])
def test_pipeline_commands_run_in_the_image(b2box_image: str, tmp_path: Path, definition: str) -> None:
    commands = pipeline_commands(PIPELINES / definition)
    assert commands == [
        'b2box run "$WORKFLOW_SCRIPT" --dry-run',
        'b2box run "$WORKFLOW_SCRIPT" --workers 2',
        'b2box run "$WORKFLOW_SCRIPT" --dry-run',
    ]
    folder = tmp_path / "project"
    shutil.copytree(REPO / "examples/average", folder, ignore=shutil.ignore_patterns("results", "logs"))
    expected = [1, 0, 0]  # pending work fails the first job; after the run nothing is pending
    for command, code in zip(commands, expected, strict=True):
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--user",
                f"{os.getuid()}:{os.getgid()}",
                "--env",
                "WORKFLOW_SCRIPT=workflow.py",
                "--volume",
                f"{folder}:{folder}",
                "--workdir",
                str(folder),
                b2box_image,
                "sh",
                "-c",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == code, f"{command}: {done.stderr}"
