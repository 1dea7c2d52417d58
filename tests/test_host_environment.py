"""A task without an environment is given the host's identity without making its spec (pydantic): the digest and
label must be exactly those the spec gives, or every result made before would look stale; anything the spec could
resolve or reject still goes to the spec."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest

import b2box
from b2box.env.spec import spec_for_task
from b2box.results import identity
from b2box.settings.resolved import settings_of

_numbers = itertools.count()


def _task(settings: dict[str, Any]) -> Any:
    """A task whose class states ``settings`` as attributes (a fresh class each time: settings are kept per class)."""
    family = type(f"HostTask{next(_numbers)}", (b2box.Task,), {"index": b2box.IntParameter(default=0), **settings})
    return family()


@pytest.mark.parametrize(
    "settings",
    [{}, {"runtime": "none"}, {"executable": ["python3", "-u"]}, {"executable_prefix": ["nice", "-n", "5"]},
     {"executable": ["python3"], "executable_prefix": ["time"]}, {"gpus": True}, {"extra_args": ["--cleanenv"]},
     {"working_dir": "/tmp"}, {"extra_args": "--nv"}, {"image_digest": "sha256:" + "0" * 64},
     {"apptainer_cmd": "singularity"}],
)  # fmt: skip
def test_the_host_environment_is_the_one_its_spec_makes(settings: dict[str, Any]) -> None:
    task = _task(settings)
    found = identity._bare_environment(settings_of(task).environment)
    assert found is not None
    assert found == identity.environment_of_spec(task.task_id, spec_for_task(task))
    assert found[1] == "the host (no container)"


@pytest.mark.parametrize(
    "settings",
    [{"env": {"ANSWER": "42"}}, {"binds": ["/data"]}, {"image": "python:3.11-slim"}, {"runtime": "docker"},
     {"apptainer_image": "image.sif"}],
)  # fmt: skip
def test_what_the_spec_could_resolve_or_reject_goes_to_the_spec(settings: dict[str, Any]) -> None:
    assert identity._bare_environment(settings_of(_task(settings)).environment) is None


@pytest.mark.parametrize(
    "changed", [{"gpus": "maybe"}, {"extra_args": "--nv"}, {"executable": (3,)}, {"executable_prefix": ["nice"]}]
)
def test_a_section_with_values_of_other_types_than_settings_make_goes_to_the_spec(changed: dict[str, Any]) -> None:
    """Settings check a task's values before (a wrong type is their error); a section made otherwise is not
    trusted to be plain."""
    section = dataclasses.replace(settings_of(_task({})).environment, **changed)
    assert identity._bare_environment(section) is None


def test_an_env_script_goes_to_the_spec_which_digests_its_content(tmp_path: Path) -> None:
    script = tmp_path / "setup.sh"
    script.write_text("export A=1\n")
    task = _task({"env_script": str(script)})
    assert identity._bare_environment(settings_of(task).environment) is None
    found = identity.environment_of(task)
    assert found == identity.environment_of_spec(task.task_id, spec_for_task(task))
    assert found != identity.environment_of(_task({}))
