"""Unmodified b2luigi scripts under ``b2box run``: ``import b2luigi`` and b2luigi's module paths are b2box's.

The scripts are b2luigi-style (tests/workflows/b2luigi_tutorial.py as written; the project's basf2 chain and
BatchProcess plug-in with their imports turned back into b2luigi's), run with ``b2box run``, ``python -m b2box``,
as local batch jobs, in Docker, and on the testbed's HTCondor in Apptainer, where no b2luigi is installed. A venv with
b2box and the real b2luigi 1.3 (ci/testbed_lib/b2luigi_venv.py) shows both situations: ``b2box run`` still gives
the script b2box's names, ``python script.py`` runs it with b2luigi itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_b2box

WORKFLOWS = Path(__file__).parent / "workflows"
STANDIN = Path(__file__).parent / "standins" / "basf2"
# b2box's own import forms in the project's scripts -> the forms b2luigi's tutorial and examples use
AS_B2LUIGI = [
    ("import b2box as b2luigi\n", "import b2luigi\n"),
    ("from b2box.basf2 import Basf2PathTask, HaddTask\n",
     "from b2luigi.basf2_helper import Basf2PathTask\nfrom b2luigi.basf2_helper.tasks import HaddTask\n"),
    ("from b2box.batch import BatchProcess, JobStatus, create_executable_wrapper, get_log_file_dir\n",
     "from b2luigi.batch.processes import BatchProcess, JobStatus\n"
     "from b2luigi.core.executable import create_executable_wrapper\n"
     "from b2luigi.core.utils import get_log_file_dir\n"),
]  # fmt: skip


def as_b2luigi(name: str, folder: Path) -> Path:
    """The project's script ``name`` with b2luigi's imports instead of b2box's (it names b2box nowhere then)."""
    text = (WORKFLOWS / name).read_text()
    for ours, theirs in AS_B2LUIGI:
        text = text.replace(ours, theirs)
    assert "b2box" not in text.split('"""')[-1], "the script still names b2box"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def tutorial(folder: Path, settings: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORKFLOWS / "b2luigi_tutorial.py", folder)
    (folder / "settings.json").write_text(json.dumps({"result_dir": "results", **(settings or {})}))
    return folder / "b2luigi_tutorial.py"


def which(folder: Path) -> dict[str, Any]:
    return json.loads(next(folder.glob("results/**/which_b2luigi.json")).read_text())


def test_b2box_run_gives_an_unmodified_script_b2box_s_b2luigi(tmp_path: Path) -> None:
    script = tutorial(tmp_path)
    done = run_b2box("run", str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = which(tmp_path)
    assert found["name"] == "b2luigi" and found["module"] == "", "b2box's view, not a file of the real b2luigi"
    assert found["parameters"] == {"n_numbers": "4"}
    assert (tmp_path / "results/n_numbers=4/average.txt").exists()


def test_python_dash_m_b2box_runs_it_too_and_as_local_batch_jobs(tmp_path: Path) -> None:
    script = tutorial(tmp_path, {"batch_system": "local"})
    done = subprocess.run([sys.executable, "-m", "b2box", str(script), "--batch"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert which(tmp_path)["module"] == "", "the job got b2box's b2luigi as its submitter did"
    record = json.loads(next(tmp_path.glob("logs/**/MyAverageTask/provenance.json")).read_text())
    assert record["backend"] == "local" and record["exit_code"] == 0


@pytest.mark.b2luigi
def test_with_the_real_b2luigi_installed_python_script_gets_it(tmp_path: Path, b2luigi_python: str) -> None:
    """One venv with b2box and b2luigi 1.3: python script.py runs with b2luigi, b2box run with b2box's names."""
    script = tutorial(tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("B2BOX_", "PYTHONPATH"))}
    plain = subprocess.run([b2luigi_python, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "site-packages/b2luigi" in which(tmp_path)["module"], "python script.py: the real b2luigi ran it"
    shutil.rmtree(tmp_path / "results")
    ours = subprocess.run([b2luigi_python, "-m", "b2box", "run", str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert which(tmp_path)["module"] == "", "b2box run: b2box's names win over the installed b2luigi"


def test_basf2_path_tasks_from_b2luigi_basf2_helper(tmp_path: Path) -> None:
    script = as_b2luigi("basf2_chain.py", tmp_path)
    (tmp_path / "input.root").write_text(json.dumps({"standin_root": 1, "events": 40}))
    settings = {"result_dir": "results", "batch_system": "local", "env_script": str(STANDIN / "setup_release.sh"),
                "env": {"BASF2_CHAIN_INPUT": str(tmp_path / "input.root")}}  # fmt: skip
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    path = os.pathsep.join(filter(None, [str(STANDIN / "python"), os.environ.get("PYTHONPATH", "")]))
    env = {"BELLE2_RELEASE": "release-08-01-00", "BASF2_CHAIN_DATASETS": "A,B", "PYTHONPATH": path}
    done = run_b2box("run", str(script), "--batch", cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "results/ntuple.root").read_text())["events"] == 80


def test_a_batch_process_plug_in_from_b2luigi_batch_processes(tmp_path: Path) -> None:
    script = as_b2luigi("custom_plugin.py", tmp_path)
    calls = tmp_path / "calls.log"
    done = run_b2box("run", str(script), cwd=tmp_path, env={"PLUGIN_CALLS": str(calls)}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(calls.read_text().splitlines()) == 3, "one start_job() per task"
    assert (tmp_path / "results/number=2/square.txt").read_text() == "4"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("from b2luigi.core.utils import product_dict", "instead: itertools.product over the value lists"),
        ("import b2luigi.batch.processes.lsf", "instead: b2box's own LSF backend: set batch_system = 'lsf'"),
        ("from b2luigi.cli import main", "instead: the b2box command"),
    ],
)
def test_what_b2box_does_not_provide_is_named_with_what_to_use(tmp_path: Path, line: str, said: str) -> None:
    (tmp_path / "script.py").write_text(f"import b2luigi\n{line}\n")
    done = run_b2box("run", "script.py", cwd=tmp_path)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_b2box_serves_the_same_paths_for_scripts_changed_by_hand() -> None:
    probe = (
        "import b2box as b2luigi\n"
        "from b2box.basf2_helper import Basf2PathTask\n"
        "from b2box.core.utils import create_output_filename, get_serialized_parameters\n"
        "from b2box.batch.processes import BatchProcess\n"
        "import b2box.basf2, b2box.batch\n"
        "assert Basf2PathTask is b2box.basf2.Basf2PathTask and BatchProcess is b2box.batch.BatchProcess\n"
        "import sys; assert 'b2luigi' not in sys.modules, 'python script.py leaves b2luigi alone'\n"
        "from b2box import b2luigi_names; b2luigi_names.install()  # as b2box run does\n"
        "from b2luigi.core.utils import create_output_filename  # (as b2luigi's remote-target page writes it)\n"
        "assert create_output_filename is b2box.settings.layout.create_output_file_name\n"
        "from b2luigi.contrib.basf2 import Basf2PathTask as Moved  # b2luigi 1.3's new home of basf2_helper\n"
        "assert Moved is Basf2PathTask and b2luigi.Task is sys.modules['b2luigi'].Task\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.docker
@pytest.mark.slow
def test_in_docker_jobs_without_b2luigi_the_names_are_b2box_s(tmp_path: Path, analysis_image: str) -> None:
    script = tutorial(tmp_path, {"batch_system": "local", "image": analysis_image, "runtime": "docker"})
    done = run_b2box("run", str(script), "--batch", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(next(tmp_path.glob("logs/**/MyAverageTask/provenance.json")).read_text())
    assert record["image"]["runtime"] == "docker" and which(tmp_path)["module"] == ""


@pytest.mark.htcondor
@pytest.mark.apptainer
@pytest.mark.slow
def test_on_htcondor_in_apptainer_without_b2luigi(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = tutorial(shared_tmp, {"batch_system": "htcondor", "image": analysis_sif, "batch_poll_interval": 0.5})
    python = worker.install_b2box()
    assert worker.run([python, "-c", "import b2luigi"], check=False).returncode != 0, "no b2luigi on the node"
    done = worker.run([python, "-m", "b2box", str(script), "--batch"], cwd=shared_tmp, check=False, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(next(shared_tmp.glob("logs/**/MyAverageTask/provenance.json")).read_text())
    assert record["backend"] == "htcondor" and record["image"]["runtime"] == "apptainer"
    assert which(shared_tmp)["module"] == ""


def test_every_b2luigi_module_b2box_provides_imports_with_every_name_it_lists() -> None:
    probe = (
        "import importlib\n"
        "from b2box import b2luigi_names\n"
        "b2luigi_names.install()\n"
        "for relative in b2luigi_names.MODULES:\n"
        "    name = 'b2luigi' + ('.' + relative if relative else '')\n"
        "    module = importlib.import_module(name)\n"
        "    missing = [item for item in module.__all__ if not hasattr(module, item)]\n"
        "    assert not missing, (name, missing)\n"
        "from b2luigi.core.task import Task, WrapperTask\n"
        "from b2luigi.core.settings import get_setting, set_setting, DeprecatedSettingsWarning\n"
        "from b2luigi.core.remote_target import RemoteTarget\n"
        "from b2luigi.core.remote_target.xrootd import XRootDSystem\n"
        "from b2luigi.core.parameter import wrap_parameter, BoolParameter\n"
        "import b2box\n"
        "assert Task is b2box.Task and RemoteTarget is b2box.RemoteTarget and XRootDSystem is b2box.XRootDSystem\n"
        "print(len(b2luigi_names.MODULES))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20
