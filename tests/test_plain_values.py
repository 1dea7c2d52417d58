"""Setting values seen right without the settings model (b2box.settings.plain_values): every value taken that way is
one the model takes as it is, every other value still meets the model (and its messages), and a workflow without
environments never imports pydantic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from b2box.settings import declared, plain_values
from b2box.settings.model import settings_model
from tests.conftest import run_python

SAMPLES: list[Any] = [
    "results", "", "--nv --cleanenv", True, False, 0, 1, 7, -3, 2.5, -1.0, 0.0, float("nan"), None,
    ["a", "b"], [], ["a", 1], {"A": "1"}, {}, {1: "x"}, ("a",), b"bytes",
]  # fmt: skip


def test_every_value_taken_without_the_model_is_one_the_model_takes_unchanged() -> None:
    model = settings_model(documented=False)
    taken = 0
    for key in declared.all_settings():
        for value in SAMPLES:
            if not plain_values.plainly_valid(key, value):
                continue
            taken += 1
            checked = getattr(model.model_validate({key: value}), key)  # raises if the model refuses it
            assert checked == value and type(checked) is type(value), (key, value, checked)
    assert taken > 100  # (most settings are plain: the check is not vacuous)


@pytest.mark.parametrize(
    ("key", "value"),
    [("result_dir", 3), ("batch_workers", 0), ("workers", True), ("batch_poll_interval", 2), ("keep_graph", "yes"),
     ("batch_system", "lsf"), ("unknown_key", "x"), ("secret_env", "A B")],
)  # fmt: skip
def test_other_values_go_to_the_model(key: str, value: Any) -> None:
    assert not plain_values.plainly_valid(key, value)


def test_a_wrong_type_in_a_settings_file_still_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text('{"result_dir": "results", "workers": "many"}')
    script = tmp_path / "flow.py"
    script.write_text("import b2box\nb2box.process([], workers=1)\n")
    done = run_python(script)
    assert done.returncode != 0
    assert "settings.json" in done.stderr and "workers" in done.stderr, done.stderr


def _imported(script: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``script`` under python -X importtime: how it ended, and every module it imported."""
    done = run_python(script, python_options=("-X", "importtime"))
    lines = done.stderr.splitlines()
    return done, [line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")]


def test_a_workflow_without_environments_imports_no_pydantic_first_run_or_rerun(tmp_path: Path) -> None:
    """A first run and the kept graph's rerun of a workflow without environments, with a settings file and
    set_setting of plain values: python -X importtime shows every module imported (and, unlike a variable, leaves
    the kept graph's basis as it was). Nor does either import a batch system's module: no batch system is used."""
    shutil.copy(Path(__file__).parent / "workflows" / "kept.py", tmp_path / "kept.py")
    (tmp_path / "kept_sizes.py").write_text("COUNT = 2\n")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.root").write_text("a")
    (tmp_path / "settings.json").write_text('{"log_dir": "logs", "keep_graph": true, "workers": 1}')
    first, imported_first = _imported(tmp_path / "kept.py")
    assert first.returncode == 0, first.stderr
    assert "done 4/4" in first.stderr
    built = (tmp_path / "graph_built.log").read_text()
    again, imported_again = _imported(tmp_path / "kept.py")
    assert again.returncode == 0, again.stderr
    assert "already complete, 0 to run" in again.stderr
    assert (tmp_path / "graph_built.log").read_text() == built, "the rerun built the graph"
    for imported in (imported_first, imported_again):
        assert "luigi" in imported and "b2box.engine.scheduler" in imported
        assert not [name for name in imported if name.startswith("pydantic")], "pydantic was imported"
        backends = [name for name in imported if name.startswith("b2box.batch.backends.")]
        assert backends == ["b2box.batch.backends.registry"], "a batch system's module was imported"
