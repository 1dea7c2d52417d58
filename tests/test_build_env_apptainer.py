"""`b2box build-env --apptainer` on a node with Apptainer and no Docker: the testbed's worker node.

The Dockerfile of docs/examples/images/tiny (FROM the worker node's offline registry, ENV, WORKDIR, COPY of a file
of its folder, RUN) is converted with spython and built by Apptainer as the ordinary user; the SIF is locked with
its sha256, a second build is a cache hit, and a workflow naming env:tiny runs in it locally, on HTCondor and on
Slurm, seeing what RUN, ENV and COPY made. An instruction the conversion cannot carry stops with one line.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_build_env_sif import give_tree_to
from tests.test_pool import sha256
from tests.testbed_plugin import testbed

pytestmark = [pytest.mark.apptainer, pytest.mark.htcondor, pytest.mark.slurm]
EXAMPLES = REPO / "docs" / "examples"


def offline(python_version: str) -> dict[str, str]:
    """The environment of a build on the worker node, which has no network: Apptainer pulls the base image from the
    registry over plain HTTP (every flag has an APPTAINER_ variable), and pip finds b2box's dependencies for the
    image's Python in a wheelhouse the host made (a site's wheel mirror, as far as b2box can tell)."""
    wheels = testbed.ensure_wheelhouse(testbed.project_requirements(REPO, []), python_version, "x86_64")
    return {"APPTAINER_NOHTTPS": "1", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}


def lock_of(project: Path) -> dict[str, Any]:
    return dict(json.loads((project / "b2box.lock").read_text())["environments"])


def b2box_command(worker: Any) -> str:
    return str(Path(worker.install_b2box()).parent / "b2box")


def test_dockerfile_builds_into_a_sif_without_docker_and_runs_locally_on_htcondor_and_slurm(
    worker: Any, shared_tmp: Path
) -> None:
    assert worker.registry_image() == "127.0.0.1:5000/python:3.11-slim-bookworm"
    no_docker = worker.run("command -v docker || ls /var/run/docker.sock /run/docker.sock", check=False)
    assert no_docker.returncode != 0, f"the node must have no Docker: {no_docker.stdout}"
    shutil.copytree(EXAMPLES / "images", shared_tmp / "images")
    give_tree_to(shared_tmp, worker)
    b2box = b2box_command(worker)
    env = offline("3.11")  # the Python of the base image

    first = worker.run([b2box, "build-env", "--apptainer", "tiny"], cwd=shared_tmp, env=env, timeout=900)
    assert "b2box: tiny: INFO:" in first.stderr and "b2box: tiny (b2box layer): INFO:" in first.stderr, first.stderr
    assert "b2box: tiny: + echo " in first.stderr, "each %post command is said as it runs"
    assert "(built in " in first.stdout and "(SIF from the definition)" in first.stdout, first.stdout
    entry = lock_of(shared_tmp)["tiny"]
    assert entry["sif_from"] == "definition" and entry["sif_sha256"] == sha256(entry["sif"]), entry
    assert "docker_id" not in entry and Path(entry["sif"]).parent == shared_tmp / "images/.sif"
    kept = Path(entry["apptainer_definition"])
    assert kept.parent == Path(entry["sif"]).parent and "From: 127.0.0.1:5000/python:3.11-slim-bookworm" in (
        kept.read_text()
    ), "the generated definition is kept beside the SIF"

    started = time.monotonic()
    again = worker.run([b2box, "build-env", "--apptainer", "tiny"], cwd=shared_tmp, env=env, timeout=300)
    assert "(cached)" in again.stdout and "INFO:" not in again.stderr and time.monotonic() - started < 30
    assert lock_of(shared_tmp)["tiny"] == entry
    assert worker.run([b2box, "build-env", "--check"], cwd=shared_tmp).returncode == 0

    python = worker.install_b2box()
    for system in ("local", "htcondor", "slurm"):
        folder = shared_tmp / system
        folder.mkdir()
        shutil.copy(EXAMPLES / "in_tiny.py", folder / "in_tiny.py")
        settings = {"image": "env:tiny", "batch_system": system, "result_dir": "results", "batch_poll_interval": 0.5}
        (folder / "settings.json").write_text(json.dumps(settings))
        give_tree_to(shared_tmp, worker)
        worker.run([python, "in_tiny.py", "--batch"], cwd=folder, timeout=600)
        for index in range(2):
            seen = json.loads((folder / f"results/index={index}/seen.json").read_text())
            assert seen["env"] == "hello from ENV" and seen["copy"] == "hello from COPY", seen
            assert seen["run"] == "made by RUN in /opt/tiny, where COPY put: hello from COPY", seen
            assert seen["python"].startswith("/opt/b2box/"), "b2box's layer is in the SIF, first on PATH"
            record = json.loads((folder / f"logs/index={index}/Look/provenance.json").read_text())
            assert record["image"]["runtime"] == "apptainer" and record["backend"] == system, record
            assert record["image"]["digest"] == entry["sif_sha256"], record


def test_untranslatable_instruction_stops_with_one_line(worker: Any, shared_tmp: Path) -> None:
    folder = shared_tmp / "images" / "broken"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM 127.0.0.1:5000/python:3.11-slim-bookworm\nRUN true\nUSER nobody\n")
    give_tree_to(shared_tmp, worker)
    refused = worker.run([b2box_command(worker), "build-env", "--apptainer", "broken"], cwd=shared_tmp, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert refused.stderr.startswith(f"b2box: error: {folder / 'Dockerfile'}:3: USER is not translated")
    assert not (shared_tmp / "images/.sif").exists() or not list((shared_tmp / "images/.sif").iterdir())


def test_failing_build_shows_the_end_of_its_log_once_and_leaves_no_sif(worker: Any, shared_tmp: Path) -> None:
    folder = shared_tmp / "images" / "failing"
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(
        f"FROM {worker.registry_image()}\nRUN echo about to fail && ls /no-such-folder\n"
    )
    give_tree_to(shared_tmp, worker)
    failed = worker.run(
        [b2box_command(worker), "build-env", "--apptainer", "failing"], cwd=shared_tmp, env=offline("3.11"), check=False
    )
    assert failed.returncode == 2, failed.stderr
    error = failed.stderr[failed.stderr.index("b2box: error: ") :]
    assert error.startswith("b2box: error: building failing from ") and "apptainer build exited with" in error
    assert "No such file or directory" in error and error.count("+ echo about to fail") == 1, "the log's tail, once"
    assert not list((shared_tmp / "images/.sif").glob("*.sif*")), "no SIF, no partial one"
    assert not (shared_tmp / "b2box.lock").exists()
