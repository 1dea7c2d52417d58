"""The job's entry point: load the workflow script as ``__main__``, then run this job's task(s).

:func:`main` re-executes the workflow script as ``__main__`` so its
``set_setting`` calls and imports happen as on the host; its ``process()``
call then sees this job (:func:`current`) and runs only this job's task,
rebuilt from its parameters, or each task of its group.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from b2box import b2luigi_names
from b2box.job.files import JobSpec
from b2box.job.group import read_group, run_group
from b2box.job.run import run, use_submitted_settings

_current: tuple[JobSpec, str] | None = None
_group: list[Any] = []  # the members of a group job (b2box.job.group.GroupMember)


def current() -> tuple[JobSpec, str] | None:
    """The job this process runs (spec, batch job id), if it is a job."""
    return _current


def run_current() -> int:
    """Run what this job process is for: its task, or each task of its group (:mod:`b2box.job.group`)."""
    if _current is None:
        raise RuntimeError("not inside a b2box job")
    if _group:
        return run_group(_group, _current[1])
    return run(*_current)


def main(argv: list[str]) -> None:
    """Entry point inside a job: ``<job.json or group.json> [batch job id]``."""
    global _current, _group

    members = read_group(argv[0])
    spec = JobSpec.read(members[0].job if members else argv[0])
    use_submitted_settings(spec)
    job_id = argv[1] if len(argv) > 1 else ""
    _current, _group = (spec, job_id), members or []
    if spec.b2luigi_names:
        b2luigi_names.install()
    if spec.script:
        os.environ["B2BOX_SCRIPT"] = spec.script
        sys.argv = [spec.script]
        sys.path.insert(0, os.path.dirname(spec.script))
        runpy.run_path(spec.script, run_name="__main__")
    # The script normally calls process(), which runs the job and exits; a script without a
    # process() call (tasks defined in an importable module) gets its job run here.
    raise SystemExit(run_current())
