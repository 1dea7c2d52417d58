"""pytest plugin for the testbed of ci/testbed.py: markers that need it and fixtures that use it.

Tests marked ``docker``, ``apptainer``, ``htcondor``, ``slurm``, ``remote`` or ``browser`` need the testbed. The
first of them brings it up (idempotent: seconds when ``python3 ci/testbed.py up`` ran before). When it cannot come
up (no root, no Docker, no Chromium and no apt, ...) they are skipped with the reason, except with ``CI=true``,
where they fail: CI must not quietly test less.

Fixtures: ``docker_client``, ``analysis_image``, ``worker_node_image``, ``worker`` (see ``ci/testbed.py: Worker``),
``analysis_sif``, ``shared_tmp`` and ``chromium``; ``wait_for_files`` polls for the outputs of batch jobs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
MARKERS = ("docker", "apptainer", "htcondor", "slurm", "remote", "browser", "b2luigi")
KEEP_SESSIONS = 3  # shared_tmp folders of this many past sessions stay for inspection


def _load_testbed() -> ModuleType:
    """ci/ is no package (ci/testbed.py must run with a bare python3), so load the module from its file."""
    name = "b2box_ci_testbed"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "ci" / "testbed.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


testbed = _load_testbed()
Worker = testbed.Worker  # for annotations in tests: from tests.testbed_plugin import Worker

_problems: dict[str, str | None] = {}  # level ("docker" or "pool") -> why it is not up, None when it is
_workers: list[Any] = []
_browsers: list[str] = []
_b2luigi_pythons: list[str] = []


def _bring_up(level: str) -> str | None:
    """Bring the testbed up once per session and level; remember why it failed."""
    if level not in _problems:
        try:
            if level == "docker":
                testbed.up_docker()
            elif level == "storage":
                testbed.up_storage()
            elif level == "browser":
                _browsers.append(testbed.up_browser())
            elif level == "b2luigi":
                _b2luigi_pythons.append(testbed.up_b2luigi())
            else:
                _workers.append(testbed.up())
            _problems[level] = None
        except testbed.TestbedError as error:
            _problems[level] = str(error)
        except (OSError, subprocess.SubprocessError) as error:
            _problems[level] = f"{type(error).__name__}: {error}"
    return _problems[level]


def require_testbed(level: str = "pool") -> None:
    """Skip the test when the testbed (``docker``: engine and analysis image; ``storage``: the XRootD server
    program; ``browser``: a headless Chromium; ``pool``: everything) cannot come up here; fail instead when
    CI=true."""
    problem = _bring_up(level)
    if problem:
        pieces = {"docker": "Docker", "storage": "XRootD server", "browser": "Chromium", "b2luigi": "b2luigi venv"}
        piece = pieces.get(level, "worker node")
        message = f"testbed ({piece}) not available: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    needed = {mark.name for mark in item.iter_markers() if mark.name in MARKERS}
    if "remote" in needed:
        require_testbed("storage")
        needed.discard("remote")
    for alone in ("browser", "b2luigi"):  # pieces that need no worker node
        if alone in needed:
            require_testbed(alone)
            needed.discard(alone)
    if needed:
        require_testbed("docker" if needed == {"docker"} else "pool")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client of the testbed's engine."""
    require_testbed("docker")
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def analysis_image() -> str:
    """Tag of the image analysis jobs run in (python:3.11-slim-bookworm, made locally when no registry answers)."""
    require_testbed("docker")
    return testbed.ANALYSIS_IMAGE


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium (Debian's ``chromium``, installed when missing)."""
    require_testbed("browser")
    return _browsers[-1]


@pytest.fixture(scope="session")
def b2luigi_python() -> str:
    """The Python of a venv where this clone's b2box and the real b2luigi 1.3 are installed together."""
    require_testbed("b2luigi")
    return _b2luigi_pythons[-1]


@pytest.fixture(scope="session")
def worker_node_image() -> str:
    """Tag of the worker node's image (Debian 13, Python 3.13, HTCondor, Slurm, Apptainer; no b2box)."""
    require_testbed("pool")
    return testbed.WORKER_IMAGE


@pytest.fixture(scope="session")
def worker() -> Any:
    """The worker-node container (HTCondor pool, Slurm cluster, Apptainer), also the submit node: see Worker."""
    require_testbed("pool")
    return _workers[-1]


@pytest.fixture(scope="session")
def analysis_sif(worker: Any) -> str:
    """SIF file of the analysis image; the same path on the host and in the worker node; cached by image id."""
    return worker.sif(testbed.ANALYSIS_IMAGE)


@pytest.fixture(scope="session")
def _shared_session_dir(worker: Any) -> Path:
    """This session's folder in the shared folder; those of older sessions beyond the last few are removed."""
    base = Path(worker.shared_dir) / "pytest"
    base.mkdir(exist_ok=True)
    sessions = sorted(base.glob("session-*"))
    for old in sessions[: max(0, len(sessions) - (KEEP_SESSIONS - 1))]:
        shutil.rmtree(old, ignore_errors=True)
    folder = base / f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir()
    _give_to(folder, worker)
    return folder


@pytest.fixture
def shared_tmp(_shared_session_dir: Path, worker: Any, request: pytest.FixtureRequest) -> Path:
    """A fresh folder in the shared folder (same path on the host and in the worker node), owned by the worker
    user, so jobs can write there and the test can read the results."""
    name = "".join(char if char.isalnum() or char in "-_." else "_" for char in request.node.name)[:80]
    folder = _shared_session_dir / name
    suffix = 0
    while folder.exists():
        suffix += 1
        folder = _shared_session_dir / f"{name}-{suffix}"
    folder.mkdir()
    _give_to(folder, worker)
    return folder


def _give_to(folder: Path, worker: Any) -> None:
    if os.geteuid() == 0:
        os.chown(folder, worker.uid, worker.gid)
    folder.chmod(0o775)


def wait_for_files(paths: Sequence[Path], timeout: float = 120, diagnose: Callable[[], str] | None = None) -> None:
    """Poll (every 0.2 s) until all files exist and are non-empty, e.g. a batch job's outputs; on timeout fail with
    what is missing and what diagnose() says (queue state, job logs)."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [path for path in paths if not path.exists() or path.stat().st_size == 0]
        if not missing:
            return
        if time.monotonic() > deadline:
            extra = f"\n{diagnose()}" if diagnose else ""
            pytest.fail(f"not written within {timeout:.0f} s: {', '.join(map(str, missing))}{extra}")
        time.sleep(0.2)
