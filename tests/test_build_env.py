"""`b2box build-env` on the real Docker engine: build, lock, cache hit, env:NAME, --check."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_b2box, run_python

pytestmark = pytest.mark.docker
WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "images", tmp_path / "images", ignore=shutil.ignore_patterns(".sif"))
    return tmp_path


def run_small_workflow(folder: Path, settings: dict) -> dict:
    """Run tests/workflows/small.py with --batch in a new ``folder``; the provenance of its first job."""
    folder.mkdir()
    shutil.copy(WORKFLOWS / "small.py", folder / "small.py")
    (folder / "settings.json").write_text(json.dumps(settings))
    ran = run_python(folder / "small.py", "--batch")
    assert ran.returncode == 0, ran.stderr
    return dict(json.loads((folder / "logs/index=0/Number/provenance.json").read_text()))


def test_build_lock_cache_and_use_an_environment(project: Path, docker_client) -> None:
    first = run_b2box("build-env", "analysis", cwd=project, timeout=900)
    assert first.returncode == 0, first.stderr
    if "(cached)" not in first.stdout:  # (the suite may have built it already: then it is a cache hit)
        assert "b2box: analysis: Step 1/" in first.stderr and "b2box: analysis (b2box layer): Step 1/" in first.stderr
        assert " s)" in first.stdout and "(built in " in first.stdout
    lock = json.loads((project / "b2box.lock").read_text())["environments"]["analysis"]
    image = docker_client.images.get(lock["docker_image"])
    assert image.id == lock["docker_id"] and lock["docker_image"].startswith("b2box-env/analysis:")
    assert image.labels["org.b2box.definition"] == lock["definition"]

    started = time.monotonic()
    again = run_b2box("build-env", "analysis", cwd=project)
    assert again.returncode == 0 and "(cached)" in again.stdout
    assert time.monotonic() - started < 30
    assert run_b2box("build-env", "--check", cwd=project).returncode == 0

    folder = project / "analysis"
    record = run_small_workflow(folder, {"image": "env:analysis", "env_script": "/opt/analysis/env.sh"})
    assert record["image"]["digest"] == lock["docker_id"] and record["image"]["runtime"] == "docker"
    number = json.loads((folder / "results/index=0/number.json").read_text())
    assert number["executable"].startswith("/opt/b2box/"), "b2box installed in the image is used, not mounted"


def test_changed_definition_fails_check_and_missing_names_are_explained(project: Path) -> None:
    (project / "b2box.lock").write_text(json.dumps({"environments": {"analysis": {"definition": "0" * 64}}}))
    changed = run_b2box("build-env", "--check", cwd=project)
    assert changed.returncode == 1 and "analysis" in changed.stderr and "changed" in changed.stderr
    missing = run_b2box("build-env", "nonexistent", cwd=project)
    assert missing.returncode == 2 and str(project / "images") in missing.stderr and "Traceback" not in missing.stderr


def test_unlocked_environment_is_one_clear_error_before_the_run(project: Path) -> None:
    folder = project / "wf"
    folder.mkdir()
    shutil.copy(WORKFLOWS / "small.py", folder / "small.py")
    (folder / "settings.json").write_text(json.dumps({"image": "env:analysis"}))
    ran = run_python(folder / "small.py", "--batch")
    assert ran.returncode == 2
    assert ran.stderr.count("analysis is not in") == 1 and "b2box build-env analysis" in ran.stderr
    (folder / "settings.json").write_text(json.dumps({"image": "env:analysys"}))
    misspelt = run_python(folder / "small.py", "--batch")
    assert misspelt.returncode == 2
    assert "there is no environment analysys in" in misspelt.stderr
    assert "did you mean 'env:analysis'?" in misspelt.stderr


def test_build_failure_shows_the_failing_step(project: Path, docker_client) -> None:
    broken = project / "images" / "broken"
    broken.mkdir()
    (broken / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\nRUN echo step-output && false\n")
    before = {container.id for container in docker_client.containers.list(all=True)}
    failed = run_b2box("build-env", "broken", cwd=project, timeout=300)
    assert failed.returncode == 2
    assert "building" in failed.stderr and "false" in failed.stderr and "step-output" in failed.stderr
    assert "b2box: broken: Step 2/2 : RUN echo step-output && false" in failed.stderr, "each step as it starts"
    assert failed.stderr.count("returned a non-zero code") == 1, "the error, once"
    assert {container.id for container in docker_client.containers.list(all=True)} == before, "nothing left behind"
