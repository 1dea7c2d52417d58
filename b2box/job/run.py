"""Run one task inside a job and record what happened in ``provenance.json``.

The task is rebuilt from the parameters in its :class:`~b2box.job.files.JobSpec`
(the task graph is not rebuilt), run with the same guarantees as a local run
(:func:`b2box.engine.execute.execute`), and its provenance written beside the logs.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
import time
import traceback
from typing import Any

from b2box.job.files import EXIT_BAD_JOB, EXIT_TASK_FAILED, JobSpec, write_json


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def find_task_class(spec: JobSpec) -> Any:
    """The task's class, from the module it was defined in (``__main__`` is the script)."""
    import luigi.task_register

    module = sys.modules.get(spec.module)
    if module is None and spec.module != "__main__":
        import importlib

        if spec.import_path and spec.import_path not in sys.path:
            sys.path.insert(0, spec.import_path)
        module = importlib.import_module(spec.module)
    found: Any = module
    for part in spec.class_name.split("."):
        found = getattr(found, part, None)
        if found is None:
            break
    if isinstance(found, type):
        return found
    return luigi.task_register.Register.get_task_cls(spec.family)


def run(spec: JobSpec, job_id: str) -> int:
    """Run the job's task here and record what happened; the exit status."""
    from b2box.engine.execute import TaskFailed, execute
    from b2box.engine.scheduler import run_dependencies_here
    from b2box.settings.lookup import set_setting
    from b2box.settings.resolved import DISPATCH_IN_PLACE
    from b2box.version import __version__

    record: dict[str, Any] = {
        "task_id": spec.task_id,
        "task_family": spec.family,
        "parameters": spec.params,
        "backend": spec.backend,
        "job_id": job_id,
        "hostname": socket.gethostname(),
        "uid": os.getuid(),
        "image": spec.image,
        "python": sys.version.split()[0],
        "b2box_version": __version__,
        "start_time": _now(),
    }
    started = time.monotonic()
    code = 0
    try:
        for key, value in spec.settings.items():
            set_setting(key, value)
        task = find_task_class(spec).from_str_params(spec.params)
        if task.task_id != spec.task_id:
            raise RuntimeError(f"rebuilt task {task.task_id} differs from the submitted {spec.task_id}")
        set_setting(DISPATCH_IN_PLACE, True)
        execute(task, run_dependencies_here)
    except TaskFailed as failure:
        sys.stderr.write(failure.explanation + "\n")
        code = EXIT_TASK_FAILED
    except Exception:
        traceback.print_exc()
        code = EXIT_BAD_JOB
    record.update(end_time=_now(), duration_s=round(time.monotonic() - started, 3), exit_code=code)
    try:
        write_json(spec.provenance_path, record)
    except OSError as exc:  # a full or broken log disk must not turn a finished task into a failed one
        say(f"b2box: could not write {spec.provenance_path}: {exc}\n")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def say(text: str) -> None:
    """Tell the job's log, if it can still be written."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
