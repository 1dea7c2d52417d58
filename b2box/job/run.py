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


def _at(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="milliseconds")


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


def differs_from_submitted(task: Any, spec: JobSpec) -> str:
    """Why the task rebuilt in this job is not the one that was submitted, or ''.

    A workflow that reads environment variables when it is loaded (a sample size, a config path) builds another
    task graph in a job's clean environment: the job would compute something else, or fail confusingly.
    """
    import luigi.task

    found: list[str] = []
    if task.task_id != spec.task_id:
        found.append(f"its id is {task.task_id}, not {spec.task_id}")
    else:
        requires = sorted(required.task_id for required in luigi.task.flatten(task.requires()))
        if spec.requires and requires != sorted(spec.requires):
            found.append(f"it requires {', '.join(requires) or 'nothing'}, not {', '.join(sorted(spec.requires))}")
        outputs = sorted(str(getattr(target, "path", target)) for target in luigi.task.flatten(task.output()))
        if spec.outputs and outputs != sorted(spec.outputs):
            found.append(f"its outputs are {', '.join(outputs)}, not {', '.join(sorted(spec.outputs))}")
    if not found:
        return ""
    passed = f" (pass_env hands it {', '.join(spec.pass_env)})" if spec.pass_env else ""
    return (
        f"b2box: the task this job rebuilt is not the one submitted: {'; '.join(found)}. Likely cause: the workflow "
        "reads an environment variable when it is loaded, and the job's clean environment lacks it. Name such "
        f"variables in the pass_env setting, e.g. pass_env = ['N'], to hand them to every job{passed}."
    )


def use_submitted_settings(spec: JobSpec) -> None:
    """Settings as the submitter saw them: its settings files' contents from ``job.json`` (older job files without
    them: the files found here), not validated again (that was done at submission, and pydantic may be missing)."""
    from b2box.settings.lookup import pin_settings_files, trust_validated_sources

    trust_validated_sources()
    if spec.settings_files is not None:
        pin_settings_files([(path, data) for path, data in spec.settings_files])


def run(spec: JobSpec, job_id: str) -> int:
    """Run the job's task here and record what happened; the exit status."""
    from b2box.api import staging
    from b2box.engine.execute import TaskFailed, execute
    from b2box.engine.scheduler import run_dependencies_here
    from b2box.settings.lookup import set_setting
    from b2box.settings.resolved import DISPATCH_IN_PLACE
    from b2box.version import __version__

    # A job outlives its submitter: a later run re-attaches to it, so it commits whatever happened to the run that
    # submitted it (a job forked from the local job server would otherwise ask that run's lock).
    staging.commit_guard = None
    record: dict[str, Any] = {
        "task_id": spec.task_id,
        "task_family": spec.family,
        "parameters": spec.params,
        "backend": spec.backend,
        "job_id": job_id,
        "hostname": socket.gethostname(),
        "uid": os.getuid(),
        "image": spec.image,
        "pass_env": spec.pass_env,
        "python": sys.version.split()[0],
        "b2box_version": __version__,
        "start_time": _now(),
        "attempt": spec.attempt,
        "request_memory_bytes": spec.request_memory,
    }
    if spec.submitted_at:  # (the queue wait is added by the process that watches this one: b2box.usage)
        record["submitted_time"] = _at(spec.submitted_at)
    started = time.monotonic()
    code = 0
    try:
        for key, value in spec.settings.items():
            set_setting(key, value)
        task = find_task_class(spec).from_str_params(spec.params)
        difference = differs_from_submitted(task, spec)
        if difference:
            sys.stderr.write(difference + "\n")
            raise SystemExit(EXIT_BAD_JOB)
        set_setting(DISPATCH_IN_PLACE, True)
        # what made the result, as the submitter saw it: written beside the outputs
        kept = (spec.result_record[0], spec.result_record[1]) if spec.result_record else None
        execute(task, run_dependencies_here, kept)
    except SystemExit as stop:
        code = int(stop.code) if isinstance(stop.code, int) else EXIT_BAD_JOB
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
