"""Shared fixtures: every test gets a clean settings state and its own folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import b2box
from b2box.settings import lookup as settings

pytest_plugins = ["tests.testbed_plugin", "tests.storage"]  # testbed markers and fixtures, storage servers

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No settings leak between tests; results go below the test's tmp folder."""
    for name in list(os.environ):
        if name.startswith("B2BOX_") or name == "B2LUIGI_SETTINGS_JSON":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    saved = dict(settings._global_settings)
    settings._global_settings.clear()
    settings.reload_settings()
    b2box.set_setting("result_dir", str(tmp_path / "results"))
    b2box.set_setting("log_dir", str(tmp_path / "logs"))
    yield
    settings._global_settings.clear()
    settings._global_settings.update(saved)
    settings.reload_settings()


def run_python(
    script: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    python_options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """Run a workflow script the way a user does: python [PYTHON_OPTIONS] script.py ARGS."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *python_options, str(script), *args],
        cwd=cwd or script.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def run_b2box(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the b2box command line."""
    full_env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "b2box.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
