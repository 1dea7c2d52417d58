"""Several tasks in one batch job (``tasks_per_job``): one container, one Python, a fork per task.

Tasks too short for a batch job each are packed together. Starting a container and a Python with luigi for
every one of them would cost more than the tasks themselves, so a group job starts both once: the workflow
script is loaded once, then each member runs in a child forked from that warm process. A member that crashes
(even a segfault) takes only its own child down; each member keeps its own stdout, stderr, provenance and
exit record, so each is judged and retried on its own, exactly as if it had been a job of its own.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import asdict, dataclass
from typing import Any

from b2box import usage
from b2box.job.files import EXIT_BAD_JOB, ExitRecord, JobSpec, read_json, write_json
from b2box.job.run import run

MEMBERS_KEY = "members"


@dataclass(frozen=True)
class GroupMember:
    """One task of a group job and the files that are its own."""

    job: str  # its job.json
    stdout: str
    stderr: str
    exit: str  # its exit record


def write_group(path: str, members: list[GroupMember]) -> None:
    """Describe a group job: its members' job files, logs and exit records."""
    write_json(path, {MEMBERS_KEY: [asdict(member) for member in members]})


def read_group(path: str) -> list[GroupMember] | None:
    """The members when ``path`` describes a group job, else None (a job of one task)."""
    data: dict[str, Any] | None = read_json(path)
    if data is None or MEMBERS_KEY not in data:
        return None
    return [GroupMember(**member) for member in data[MEMBERS_KEY]]


def _run_member(member: GroupMember, job_id: str) -> None:
    """In the forked child: the member's logs become stdout and stderr; never returns."""
    code = EXIT_BAD_JOB
    try:
        for target, path in ((1, member.stdout), (2, member.stderr)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(descriptor, target)
            os.close(descriptor)
        code = run(JobSpec.read(member.job), job_id)
    except BaseException:  # whatever happens, the child must end here with a status
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_group(members: list[GroupMember], job_id: str) -> int:
    """Run every member, one after another; 0 when all succeeded."""
    failed = 0
    for member in members:
        sys.stdout.flush()
        sys.stderr.flush()
        watch = usage.Watch()
        child = os.fork()
        if child == 0:
            _run_member(member, job_id)
        code, used = usage.wait_for(child, watch)
        found = usage.about_job(member.job)
        if found is not None:  # what it used, in its own provenance (and a record of its own if it died)
            usage.record(found[0], used, code, dict(found[1], job_id=job_id), watch)
        ExitRecord.now(code).write(member.exit)  # the record the wrapper writes for a job of its own
        if code != 0:
            failed = 1
            print(
                f"b2box: {os.path.basename(os.path.dirname(member.job))} failed (exit {code}); log: {member.stderr}",
                file=sys.stderr,
            )
    return failed
