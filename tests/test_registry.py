"""The batch system registry: one line per backend, capabilities instead of names, settings next to each backend.

The toy backend (tests/workflows/toy_backend.py) is added exactly as docs/architecture.md tells a backend author:
one module plus one ``register_backend`` line; it then runs the seed's average workflow (examples/average) end to
end.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from b2box.batch.backends import registry
from b2box.batch.backends.base import capabilities_of
from b2box.batch.prepare import JobPreparer
from b2box.errors import B2BoxError, SettingsError
from b2box.settings import declared, lookup
from b2box.settings.model import settings_model
from tests.conftest import run_python

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_LINE = 'register_backend("toy", "toy_backend:ToyBackend", settings="toy_backend:ToySettings")'


def _toy_workflow(tmp_path: Path, settings: dict[str, object]) -> Path:
    """The seed workflow, its settings.json, the toy backend's module and the one line that registers it."""
    folder = tmp_path / "analysis"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "workflows" / "toy_backend.py", folder)
    seed = (ROOT / "examples" / "average" / "workflow.py").read_text()
    registered = "import b2box as b2luigi\nfrom b2box.batch import register_backend\n\n" + REGISTRY_LINE + "\n"
    (folder / "workflow.py").write_text(seed.replace("import b2box as b2luigi\n", registered, 1))
    _settings(folder, settings)
    return folder / "workflow.py"


def _settings(folder: Path, settings: dict[str, object]) -> None:
    """The seed's settings.json, with ``settings`` added."""
    seed_settings = json.loads((ROOT / "examples" / "average" / "settings.json").read_text())
    (folder / "settings.json").write_text(json.dumps({**seed_settings, **settings}))


def test_a_backend_added_as_one_module_and_one_registry_line_runs_the_seed_workflow(tmp_path: Path) -> None:
    script = _toy_workflow(tmp_path, {"batch_system": "toy"})
    spool = tmp_path / "spool"
    done = run_python(script, "--batch", "--workers", "10", env={"TOY_SPOOL": str(spool), "TOY_ARRAY_LIMIT": "3"})
    assert done.returncode == 0, done.stdout + done.stderr
    results = script.parent / "results"
    numbers = [float((results / f"index={i}" / "number.txt").read_text()) for i in range(100)]
    assert float((results / "count=100" / "average.txt").read_text()) == pytest.approx(statistics.mean(numbers))
    sizes = [len(json.loads(path.read_text())["pids"]) for path in spool.glob("*.json")]
    assert sum(sizes) == 101 and max(sizes) == 3, "every job went out in arrays split at the toy's limit of 3"
    record = json.loads((script.parent / "logs/count=100/Average/provenance.json").read_text())
    assert record["backend"] == "toy" and record["job_id"].startswith("toy"), record

    # its own settings joined the settings model: checked like any other, and read by the backend
    _settings(script.parent, {"batch_system": "toy", "toy_priority": "urgent"})
    refused = run_python(script, "--batch", env={"TOY_SPOOL": str(spool)})
    assert refused.returncode == 2
    assert "settings.json: setting 'toy_priority'" in refused.stderr and "valid integer" in refused.stderr
    _settings(script.parent, {"batch_system": "toy", "toy_priority": 7})
    for path in (results / "index=7" / "number.txt", results / "count=100" / "average.txt"):
        path.unlink()
    shutil.rmtree(spool)
    again = run_python(script, "--batch", env={"TOY_SPOOL": str(spool)})
    assert again.returncode == 0, again.stderr
    arrays = [json.loads(path.read_text()) for path in spool.glob("*.json")]
    assert [record["priority"] for record in arrays] == [7, 7], "two jobs, each submitted with the setting's value"


def test_an_unregistered_batch_system_is_refused_naming_the_registered_ones() -> None:
    with pytest.raises(SettingsError, match=r"must be one of: 'auto', 'local', 'lsf', 'htcondor', 'slurm', 'gbasf2'"):
        lookup.set_setting("batch_system", "toy-not-registered")
    with pytest.raises(B2BoxError, match=r"'toy-not-registered' is not available .* use 'local', 'lsf'"):
        registry.registration("toy-not-registered")


def test_auto_picks_the_first_registered_command_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    assert registry.resolve("auto") == "local", "nothing found: local"
    for command in ("sbatch", "condor_submit"):
        (folder / command).write_text("#!/bin/sh\n")
        (folder / command).chmod(0o755)
    assert registry.resolve("auto") == "local", "looked for once per run"
    registry.detect_again()
    assert registry.resolve("auto") == "htcondor", "HTCondor before Slurm, as b2luigi decides"
    (folder / "gbasf2").write_text("#!/bin/sh\n")
    (folder / "gbasf2").chmod(0o755)
    registry.detect_again()
    assert registry.resolve("auto") == "htcondor", "gbasf2 is never chosen by auto"
    assert registry.resolve("apptainer") == "local", "b2luigi's alias"


def test_what_differs_between_backends_is_declared_as_capabilities() -> None:
    declared_by = {name: capabilities_of(registry.backend_type(name)) for name in registry.names()}
    assert [name for name, caps in declared_by.items() if caps.transfers_files] == ["htcondor"]
    assert [name for name, caps in declared_by.items() if caps.site_chooses_container] == ["gbasf2"]
    assert [name for name, caps in declared_by.items() if caps.follows_jobs] == ["gbasf2"]
    assert [name for name, caps in declared_by.items() if caps.wakes_on_job_end] == ["local"]
    assert JobPreparer("gbasf2").capabilities.site_chooses_container


def test_a_registration_that_says_whether_it_decides_the_environment_says_what_its_class_does() -> None:
    """The registry's word spares a local run importing its backend for every task's identity: it must not lie."""
    stated = {entry.name: entry.decides_environment for entry in registry.registered()}
    assert None not in stated.values(), "every built-in batch system states it"
    for name, decides in stated.items():
        assert callable(getattr(registry.backend_type(name), "result_environment", None)) is decides, name
    assert [name for name, decides in stated.items() if decides] == ["gbasf2"]


def test_every_default_is_written_once_and_jobs_resolve_settings_as_the_model_does(tmp_path: Path) -> None:
    """A job has no pydantic: it must still see every setting's default exactly as the model has it."""
    model = settings_model()
    assert set(model.model_fields) == set(declared.all_settings())
    for name, field in model.model_fields.items():
        assert lookup.model_default(name) == field.default, name
    probe = (
        "import json, sys\n"
        "sys.modules['pydantic'] = None\n"  # as in an image without pydantic: importing it fails
        "import b2box\n"
        "from b2box.settings import declared, lookup\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({name: lookup.model_default(name) for name in names}, default=repr))\n"
    )
    names = sorted(model.model_fields)
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(names)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")},
    )
    assert done.returncode == 0, done.stderr
    job_side = json.loads(done.stdout)
    expected = {name: json.loads(json.dumps(field.default, default=repr)) for name, field in model.model_fields.items()}
    assert job_side == expected
