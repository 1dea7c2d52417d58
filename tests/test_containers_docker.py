"""Jobs in Docker containers on a real Docker engine (the testbed's): identity, ownership, refusals."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_b2box, run_python
from tests.identity_runs import NAMES as IDENTITY_NAMES
from tests.identity_runs import run as run_identity
from tests.identity_runs import setup as setup_identity
from tests.identity_runs import status as identity_status

pytestmark = pytest.mark.docker
WORKFLOWS = Path(__file__).parent / "workflows"


def workflow(folder: Path, settings: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "small.py"
    shutil.copy(WORKFLOWS / "small.py", script)
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "env.sh").write_text('export FROM_ENV_SCRIPT="sourced in $(pwd)"\n')
    return script


@pytest.mark.parametrize("tasks_per_job", [1, 3])
def test_same_workflow_in_docker_and_without_container(
    tmp_path: Path, analysis_image: str, docker_client, tasks_per_job: int
) -> None:
    """Also with the three Number tasks in one job: one container, one Python for the group."""
    expected_digest = docker_client.images.get(analysis_image).id
    results = {}
    for runtime in ("none", "docker"):
        folder = tmp_path / runtime
        script = workflow(
            folder,
            {
                "image": analysis_image if runtime == "docker" else "",
                "runtime": runtime,
                "env": {"GREETING": "hello 'world' $(not run)"},
                "env_script": "env.sh",
                "tasks_per_job": tasks_per_job,
            },
        )
        finished = run_python(script, "--batch")
        assert finished.returncode == 0, finished.stderr
        assert json.loads((folder / "results/sum.json").read_text()) == {"sum": 3}
        number = json.loads((folder / "results/index=1/number.json").read_text())
        assert number["greeting"] == "hello 'world' $(not run)"
        assert number["from_env_script"] == f"sourced in {folder}"
        results[runtime] = number
        record = json.loads((folder / "logs/index=1/Number/provenance.json").read_text())
        assert record["image"]["runtime"] == runtime
        assert record["exit_code"] == 0 and record["uid"] == os.getuid()
        if runtime == "docker":
            assert record["image"]["digest"] == expected_digest
            assert record["image"]["reference"] == analysis_image
            assert record["image"]["runtime_version"]
            assert record["hostname"] != os.uname().nodename, "the job ran in a container"
            said = f"b2box: jobs run in docker image {analysis_image} {expected_digest} (the first: Number)"
            assert finished.stderr.count(said) == 1, finished.stderr
        for output in (folder / "results").rglob("*.json"):
            assert output.stat().st_uid == os.getuid() and output.stat().st_gid == os.getgid()
        records = folder.glob("logs/index=*/Number/provenance.json")
        job_ids = {json.loads(path.read_text())["job_id"] for path in records}
        assert len(job_ids) == (1 if tasks_per_job == 3 else 3)
    assert results["docker"]["executable"] != results["none"]["executable"]


def test_pinned_digest_mismatch_is_refused_before_submission(tmp_path: Path, analysis_image: str) -> None:
    script = workflow(tmp_path, {"image": analysis_image, "runtime": "docker", "image_digest": "sha256:" + "0" * 64})
    finished = run_python(script, "--batch")
    assert finished.returncode == 2, "found before anything is submitted, like every setting the run cannot use"
    assert "refusing to run" in finished.stderr and analysis_image in finished.stderr
    assert "0" * 64 in finished.stderr
    assert not (tmp_path / "task_files").exists() or not list((tmp_path / "logs").rglob("stdout"))


def test_matching_pinned_digest_runs(tmp_path: Path, analysis_image: str, docker_client) -> None:
    digest = docker_client.images.get(analysis_image).id
    script = workflow(tmp_path, {"image": analysis_image, "runtime": "docker", "image_digest": digest})
    assert run_python(script, "--batch").returncode == 0


def bash_only_image(docker_client) -> str:
    """An image with bash and nothing else: no Python at all."""
    name = "b2box-test/bash-only:1"
    if docker_client.images.list(name=name):
        return name
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        libraries = subprocess.run(["ldd", "/bin/bash"], capture_output=True, text=True, check=True).stdout
        paths = ["/bin/bash", *(word for word in libraries.split() if word.startswith("/"))]
        for path in paths:
            tar.add(os.path.realpath(path), arcname=path.lstrip("/"))
    docker_client.api.import_image_from_data(archive.getvalue(), repository=name.split(":")[0], tag="1")
    return name


def test_image_without_python_stops_the_run_before_anything_runs(tmp_path: Path, docker_client) -> None:
    image = bash_only_image(docker_client)
    before = {container.id for container in docker_client.containers.list(all=True)}
    for mode in (["--batch"], []):
        script = workflow(tmp_path / (mode[0][2:] if mode else "here"), {"image": image, "runtime": "docker"})
        finished = run_python(script, *mode)
        assert finished.returncode == 2, finished.stderr
        assert f"docker image {image} has no python3" in finished.stderr and "Traceback" not in finished.stderr
        assert finished.stderr.count("has no python3") == 1, "one line for the image, not one failure per task"
        assert "Use an image with Python 3 (b2box build-env makes one from yours)" in finished.stderr
        assert not list(script.parent.glob("logs/**/stderr")), "no task started"
    assert {container.id for container in docker_client.containers.list(all=True)} == before, "nothing left behind"


def test_the_bootstrap_still_names_an_image_without_python_when_the_check_is_passed(
    tmp_path: Path, docker_client
) -> None:
    """An env_script may provide Python, so such a task is not checked before the run: the job then fails with the
    bootstrap's own line (exit 72), as before."""
    image = bash_only_image(docker_client)
    script = workflow(tmp_path, {"image": image, "runtime": "docker", "env_script": "env.sh"})
    (tmp_path / "env.sh").write_text("# provides nothing\n")
    finished = run_python(script, "--batch")
    assert finished.returncode == 1
    stderr = (tmp_path / "logs/index=0/Number/stderr").read_text()
    assert f"image {image} has no python3" in stderr and "Traceback" not in stderr
    assert "exited with code 72" in finished.stderr


def test_image_with_another_python_runs_the_hosts_b2box_mounted(tmp_path: Path, worker_node_image: str) -> None:
    """An image the user did not build, with its own Python (3.13 here) and no b2box: the job side of b2box
    is pure Python, so the host's installation is bind-mounted and used."""
    script = workflow(tmp_path, {"image": worker_node_image, "runtime": "docker"})
    finished = run_python(script, "--batch")
    assert finished.returncode == 0, finished.stderr
    number = json.loads((tmp_path / "results/index=0/number.json").read_text())
    assert number["python"] != f"{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}"
    record = json.loads((tmp_path / "logs/index=0/Number/provenance.json").read_text())
    assert record["python"] == number["python"] and record["image"]["reference"] == worker_node_image


def test_without_batch_a_task_with_an_image_runs_in_its_container(tmp_path: Path, analysis_image: str,
                                                                  docker_client) -> None:  # fmt: skip
    """The environment spec holds in a plain local run: same wrapper, container, logs and provenance as a job."""
    script = workflow(tmp_path / "wf", {"image": analysis_image, "env": {"GREETING": "hi"}, "env_script": "env.sh"})
    finished = run_python(script)  # no --batch
    assert finished.returncode == 0, finished.stderr
    number = json.loads((tmp_path / "wf/results/index=2/number.json").read_text())
    assert number["greeting"] == "hi" and number["from_env_script"] == f"sourced in {tmp_path / 'wf'}"
    assert number["executable"] != sys.executable, "it ran in the image's Python"
    record = json.loads((tmp_path / "wf/logs/index=2/Number/provenance.json").read_text())
    assert record["image"]["runtime"] == "docker"
    assert record["image"]["digest"] == docker_client.images.get(analysis_image).id


def test_missing_image_is_one_error_before_anything_runs(tmp_path: Path) -> None:
    script = workflow(tmp_path / "wf", {"image": "no-such-image:1", "runtime": "docker"})
    for mode in ([], ["--batch"]):
        finished = run_python(script, *mode)
        assert finished.returncode == 2, finished.stderr
        assert finished.stderr.count("'no-such-image:1' is not on this machine") == 1, "said once, not once per task"
        assert "Pull it (docker pull no-such-image:1)" in finished.stderr
        assert "needed by Sum(" in finished.stderr and "and 1 more" in finished.stderr, "tasks named as people do"
        assert "setting 'image'" in finished.stderr
        assert not (tmp_path / "wf/results").exists()


@pytest.mark.parametrize("passed", [False, True])
def test_a_graph_read_from_the_environment_needs_pass_env(tmp_path: Path, analysis_image: str, passed: bool) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    shutil.copy(WORKFLOWS / "env_graph.py", folder / "env_graph.py")
    settings = {"image": analysis_image, "runtime": "docker", **({"pass_env": ["GRAPH_N"]} if passed else {})}
    (folder / "settings.json").write_text(json.dumps(settings))
    finished = run_python(folder / "env_graph.py", "--batch", env={"GRAPH_N": "3"})
    if passed:
        assert finished.returncode == 0, finished.stderr
        assert (folder / "whole.txt").read_text() == "3"
        assert json.loads((folder / "logs/Whole/provenance.json").read_text())["pass_env"] == ["GRAPH_N"]
    else:
        assert finished.returncode == 1
        assert "not the one submitted" in finished.stderr and "pass_env" in finished.stderr
        assert not (folder / "whole.txt").exists()


@pytest.fixture(scope="module")
def second_image(docker_client, analysis_image: str) -> str:
    """The analysis image with one label more: the same software under another image ID."""
    tag = "b2box-test/identity-b:latest"
    dockerfile = f"FROM {analysis_image}\nLABEL org.b2box.test=identity-b\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    return tag


def test_a_changed_image_reruns_exactly_its_tasks_and_their_dependents(
    tmp_path: Path, analysis_image: str, second_image: str, docker_client
) -> None:
    """Number(index=1) moves to another image: it and the sum made from it run again, nothing else."""
    setup_identity(tmp_path, {"image": analysis_image, "runtime": "docker"})
    assert run_identity(tmp_path, "--batch") == set(IDENTITY_NAMES)
    assert run_identity(tmp_path, "--batch") == set()
    moved = {"IDENTITY_IMAGE_1": second_image}
    why = identity_status(tmp_path, "--why", env=moved)
    old_id, new_id = docker_client.images.get(analysis_image).id, docker_client.images.get(second_image).id
    assert f"environment docker {analysis_image} ({old_id[:19]}…) → docker {second_image} ({new_id[:19]}…)" in why
    assert run_identity(tmp_path, "--batch", env=moved) == {"Number(1)", "Sum"}
    shown = run_b2box("provenance", "results/index=1/number.json", cwd=tmp_path).stdout
    assert f"environment  docker {second_image} ({new_id[:19]}…)" in shown
    assert run_identity(tmp_path, "--batch", env=moved) == set()
    assert run_identity(tmp_path, "--batch") == {"Number(1)", "Sum"}, "and back"
