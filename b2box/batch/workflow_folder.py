"""The workflow's own folder for batch bookkeeping: ``<task_file_dir>/.b2box`` (waves, group jobs, submit files)."""

from __future__ import annotations

import os

from b2box.settings.resolved import run_settings


def state_dir() -> str:
    """``<task_file_dir>/.b2box``, created on first use."""
    folder = run_settings().state_dir
    os.makedirs(folder, exist_ok=True)
    return folder
