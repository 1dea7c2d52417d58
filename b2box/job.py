"""One task as one job: its description on disk, and what runs inside the job.

The submitting side writes ``job.json`` (the task's module, class and
parameters, where to log, what image it was meant to run in). Inside the job,
:func:`main` re-executes the workflow script as ``__main__`` so its
``set_setting`` calls and imports happen as on the host; its ``process()``
call then sees this job and runs only this task, rebuilt from its
parameters: the task graph is not rebuilt. The result goes into
``provenance.json`` beside the logs.
"""

from __future__ import annotations

import datetime
import json
import os
import runpy
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

JOB_FILE = "job.json"
PROVENANCE_FILE = "provenance.json"
EXIT_FILE = "exit.json"
EXIT_TASK_FAILED, EXIT_BAD_JOB = 1, 73


@dataclass
class JobSpec:
    """What a job must run, and where it reports."""

    task_id: str
    module: str
    class_name: str
    family: str
    params: dict[str, str]
    script: str
    log_dir: str
    backend: str
    image: dict[str, Any] = field(default_factory=dict)
    b2box_version: str = ""
    import_path: str = ""  # the sys.path entry the task's module was imported from
    settings: dict[str, Any] = field(default_factory=dict)  # set_setting values of the submitting process

    @property
    def provenance_path(self) -> str:
        return os.path.join(self.log_dir, PROVENANCE_FILE)

    @property
    def exit_path(self) -> str:
        return os.path.join(self.log_dir, EXIT_FILE)

    def write(self, path: str) -> None:
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: str) -> JobSpec:
        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


def write_json(path: str, data: Any) -> None:
    """Write JSON atomically: readers never see half a file."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


_current: tuple[JobSpec, str] | None = None
_group: list[Any] = []  # the members of a group job (b2box.job_group.GroupMember)


def current() -> tuple[JobSpec, str] | None:
    """The job this process runs (spec, batch job id), if it is a job."""
    return _current


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
    from b2box import __version__
    from b2box.execution import TaskFailed, execute
    from b2box.scheduling import run_dependencies_here
    from b2box.settings import set_setting

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
        set_setting("_dispatch_local_execution", True)
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
    except OSError as exc:
        sys.stderr.write(f"b2box: could not write {spec.provenance_path}: {exc}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def run_current() -> int:
    """Run what this job process is for: its task, or each task of its group (:mod:`b2box.job_group`)."""
    if _current is None:
        raise RuntimeError("not inside a b2box job")
    if _group:
        from b2box.job_group import run_group

        return run_group(_group, _current[1])
    return run(*_current)


def main(argv: list[str]) -> None:
    """Entry point inside a job: ``<job.json or group.json> [batch job id]``."""
    global _current, _group
    from b2box.job_group import read_group
    from b2box.settings import trust_validated_sources

    trust_validated_sources()
    members = read_group(argv[0])
    spec = JobSpec.read(members[0].job if members else argv[0])
    job_id = argv[1] if len(argv) > 1 else ""
    _current, _group = (spec, job_id), members or []
    if spec.script:
        os.environ["B2BOX_SCRIPT"] = spec.script
        sys.argv = [spec.script]
        sys.path.insert(0, os.path.dirname(spec.script))
        runpy.run_path(spec.script, run_name="__main__")
    # The script normally calls process(), which runs the job and exits; a script without a
    # process() call (tasks defined in an importable module) gets its job run here.
    raise SystemExit(run_current())
