"""The check that an image has python3, with the container start faked (tests/test_containers_docker.py runs it on
the real engine with a bash-only image): what is checked, what is remembered, what is left to the job."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2box.env import docker, python_check, user_cache
from b2box.env.identity import ImageIdentity
from b2box.env.spec import EnvSpec
from b2box.errors import B2BoxError

IMAGE = ImageIdentity(runtime="docker", reference="analysis:1", digest="sha256:abc", run_reference="sha256:abc")


@pytest.fixture
def starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The images a container was started in (each answering as ``answers`` says); the cache in tmp_path."""
    started: list[str] = []
    monkeypatch.setattr(user_cache, "FOLDER", str(tmp_path / "cache"))
    monkeypatch.setattr(python_check, "_checked", set())
    monkeypatch.setattr(docker, "runs_python", lambda reference: started.append(reference) or "")
    return started


def test_an_image_with_python_is_started_once_and_remembered_by_digest(starts: list[str]) -> None:
    spec = EnvSpec(runtime="docker", image="analysis:1")
    python_check.check_python(spec, IMAGE)
    python_check.check_python(spec, IMAGE)
    assert starts == ["sha256:abc"], "once per process"
    python_check._checked.clear()  # a new run: the digest is remembered on disk
    python_check.check_python(spec, IMAGE)
    assert starts == ["sha256:abc"]


def test_an_image_without_python_is_one_error_naming_image_and_fix(
    starts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker, "runs_python", lambda reference: 'exec: "python3": executable file not found')
    with pytest.raises(B2BoxError, match=r"docker image analysis:1 has no python3 \(exec: .*Use an image with Pyth"):
        python_check.check_python(EnvSpec(runtime="docker", image="analysis:1"), IMAGE)
    assert not user_cache.read("images-with-python.json"), "a failure is not remembered"


def test_what_provides_python_itself_or_runs_elsewhere_is_not_checked(
    starts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    python_check.check_python(EnvSpec(runtime="docker", image="analysis:1", env_script="setup.sh"), IMAGE)
    python_check.check_python(EnvSpec(runtime="docker", image="analysis:1", executable=("basf2",)), IMAGE)
    python_check.check_python(EnvSpec(), ImageIdentity(runtime="none"))
    sif = ImageIdentity(runtime="apptainer", reference="a.sif", digest="sha256:def")
    python_check.check_python(EnvSpec(runtime="apptainer", image="a.sif", apptainer_command="no-such-apptainer"), sif)
    assert starts == []
    assert not user_cache.read("images-with-python.json"), "an image not checked here is not remembered as fine"
