"""b2luigi's basf2 tasks in b2box, run with the basf2 stand-in (tests/standins/basf2) as their release.

basf2 cannot be installed here: the stand-in has basf2's path API and "processes" stand-in ROOT files (see its
docstring). The tasks run as batch jobs on this machine and in Docker, their release set up by an env_script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STANDIN = Path(__file__).parent / "standins" / "basf2"
WORKFLOW = Path(__file__).parent / "workflows" / "basf2_chain.py"
RELEASE = "release-08-01-00"


def chain(folder: Path, **settings: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORKFLOW, folder / "basf2_chain.py")
    (folder / "input.root").write_text(json.dumps({"standin_root": 1, "events": 40}))
    base = {
        "result_dir": "results",
        "batch_system": "local",
        "env_script": str(STANDIN / "setup_release.sh"),
        "env": {"BASF2_CHAIN_INPUT": str(folder / "input.root")},
    }
    (folder / "settings.json").write_text(json.dumps({**base, **settings}))
    return folder / "basf2_chain.py"


def run(script: Path, *args: str, release: str = RELEASE, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
    env.update(BELLE2_RELEASE=release, BASF2_CHAIN_DATASETS="A,B", PYTHONPATH=str(STANDIN / "python"))
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_loading_a_workflow_never_imports_basf2() -> None:
    probe = "import sys, b2box.basf2; assert 'basf2' not in sys.modules, 'basf2 imported'; print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env={"PATH": os.environ["PATH"]}
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_path_tasks_and_their_merge_run_with_the_release_set_up(tmp_path: Path) -> None:
    script = chain(tmp_path / "wf")
    done = run(script, "--batch")
    assert done.returncode == 0, done.stderr
    ntuple = json.loads((script.parent / "results/dataset=A/cut=5.2/ntuple.root").read_text())
    assert ntuple["events"] == 40 and ntuple["release"] == RELEASE and ntuple["tree"] == "B0"
    assert "Progress" in ntuple["path"], "the Progress module is added, as in b2luigi"
    merged = json.loads((script.parent / "results/ntuple.root").read_text())
    assert merged["events"] == 80


def test_a_job_running_another_release_fails_clearly(tmp_path: Path) -> None:
    script = chain(tmp_path / "wf", gbasf2_release="release-06-00-08")
    done = run(script, "--batch")
    assert done.returncode == 1
    assert "runs with basf2 release release-08-01-00, but the task is meant for release-06-00-08" in done.stderr


@pytest.mark.docker
def test_path_tasks_run_in_docker_with_the_same_release(tmp_path: Path, analysis_image: str) -> None:
    # the workflow reads BASF2_CHAIN_DATASETS when it is loaded: jobs in a container need it handed over
    script = chain(tmp_path / "wf", image=analysis_image, runtime="docker", pass_env=["BASF2_CHAIN_DATASETS"])
    done = run(script, "--batch")
    assert done.returncode == 0, done.stderr
    ntuple = json.loads((script.parent / "results/dataset=B/cut=5.2/ntuple.root").read_text())
    assert ntuple["release"] == RELEASE
    record = json.loads((script.parent / "logs/dataset=B/cut=5.2/Analysis/provenance.json").read_text())
    assert record["image"]["runtime"] == "docker"
