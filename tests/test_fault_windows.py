"""The second fault suite: the windows where a killed, suspended or interrupted submitter could run a task twice,
values that could break a job, and what a run could leave behind.

Each test here was written against a defect found by trying faults adversarially (issue 23), and fails without the
mechanism that closes it. Like tests/test_faults.py, every fault checks that no output is lost, no task runs twice,
nothing looks complete that is not and the exit code is the documented one; ``benchmarks/faults.py`` runs both
modules and counts every fault in ``benchmarks/results/faults.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import b2box as b2luigi
from b2box.errors import TaskDefinitionError
from tests.conftest import run_python
from tests.test_faults import Workflow

VALUES = Path(__file__).parent / "workflows" / "values.py"


# ------------------------------------------------------------------------------------- values that break jobs


@pytest.mark.parametrize("batch", [False, True], ids=["local run", "local batch"])
def test_a_line_break_in_a_parameter_value_runs_like_any_other_value(tmp_path: Path, batch: bool) -> None:
    script = tmp_path / "values.py"
    script.write_text(VALUES.read_text())
    done = run_python(script, *(["--batch"] if batch else []), env={"VALUES": json.dumps(["two\nlines", "plain"])})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "results" / "value=two\nlines" / "out.txt").read_text() == repr("two\nlines")


class Long(b2luigi.Task):
    value = b2luigi.Parameter()

    def output(self):
        yield self.add_to_output("out.txt")


def test_a_value_too_long_for_a_folder_name_names_the_parameter_and_the_fix() -> None:
    with pytest.raises(TaskDefinitionError, match=r"Long: parameter value makes the folder name .* 306 bytes long"):
        list(Long(value="x" * 300).output())
    with pytest.raises(TaskDefinitionError, match=r"hashed=True"):
        list(Long(value="é" * 130).output())  # 130 characters, 266 bytes
    assert list(Long(value="é" * 120).output()), "249 bytes are fine"


# -------------------------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"batch_poll_interval": -1}', "setting 'batch_poll_interval': Input should be greater than 0"),
        (b'{"result_dir": "r\xe9sultats"}', "settings.json: not UTF-8 text"),
        (None, "settings.json: a folder where b2box reads a settings file"),
    ],
    ids=["negative poll interval", "not UTF-8", "a folder"],
)
def test_bad_settings_stop_the_run_before_it_starts_naming_the_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    workflow = Workflow(tmp_path / "wf")
    settings = workflow.folder / "settings.json"
    settings.unlink()
    if content is None:
        settings.mkdir()
    else:
        settings.write_bytes(content)
    done = workflow.run("--batch", env=workflow.env(FAULT_N="1"))
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert workflow.runs_of() == Counter(), "nothing ran"
