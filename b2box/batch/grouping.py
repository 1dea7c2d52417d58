"""Several tasks in one batch job (``tasks_per_job``, b2luigi's grouped parameters).

Tasks of one family with the same batch settings are packed into jobs of up to ``tasks_per_job`` tasks, which
saves the batch system's per-job cost. Members that share their environment (image, env_script, variables, script)
run in one container and one Python, a fork per task (:mod:`b2box.job.group`); others run their wrappers one after
another. Either way each member keeps its own wrapper, logs and exit record, so each task is judged and retried on
its own.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from dataclasses import dataclass, replace
from typing import Any

from b2box.batch.backends.base import submission_key
from b2box.batch.jobs import WRAPPER_FILE, PreparedJob
from b2box.batch.prepare import JobPreparer, write_script
from b2box.batch.workflow_folder import state_dir
from b2box.engine.graph import Node
from b2box.env import container
from b2box.env.spec import EnvSpec
from b2box.env.wrapper import ANNOUNCE_LOCAL_JOB, WrapperPlan, render
from b2box.job.files import EXIT_FILE, JOB_FILE
from b2box.job.group import GroupMember, write_group
from b2box.settings.resolved import settings_of

GROUP_FOLDER = "groups"


@dataclass
class PackedJob:
    """What one batch job runs: one task, or several packed together."""

    job: PreparedJob
    members: list[tuple[Node, PreparedJob]]


def pack(wave: list[tuple[Node, PreparedJob]], preparer: JobPreparer, backend: Any) -> list[PackedJob]:
    """Pack tasks of one family with the same batch settings (equal submission keys of ``backend``) into jobs of up
    to ``tasks_per_job`` tasks."""
    buckets: dict[str, list[tuple[Node, PreparedJob]]] = {}
    packed: list[PackedJob] = []
    for node, job in wave:
        batch = settings_of(node.task).batch
        size = batch.tasks_per_job
        if size == 1 or job.transfer:  # a job that brings its files along goes alone
            packed.append(PackedJob(job=job, members=[(node, job)]))
            continue
        key = json.dumps(
            [
                node.family,
                size,
                submission_key(backend, job),
                job.container_mode,
                job.container_image,
                job.request_memory,
            ],
            sort_keys=True,
            default=str,
        )
        bucket = buckets.setdefault(key, [])
        bucket.append((node, job))
        if len(bucket) == size:
            packed.append(PackedJob(job=group(preparer, [job for _, job in bucket]), members=list(bucket)))
            bucket.clear()
    for bucket in buckets.values():
        if len(bucket) == 1:
            packed.append(PackedJob(job=bucket[0][1], members=list(bucket)))
        elif bucket:
            packed.append(PackedJob(job=group(preparer, [job for _, job in bucket]), members=list(bucket)))
    return packed


def group(preparer: JobPreparer, members: list[PreparedJob]) -> PreparedJob:
    """One job for several prepared ones: in one container and one Python when they share their environment,
    else their wrappers one after another."""
    plans = [found for job in members if (found := preparer.plan_of(job.task_id)) is not None]
    if len(plans) < len(members) or len({_environment_key(*found) for found in plans}) > 1:
        return one_after_another(members)
    first = members[0]
    spec, plan = plans[0]
    folder = _new_group_folder()
    group_file, script = os.path.join(folder, "group.json"), os.path.join(folder, WRAPPER_FILE)
    write_group(
        group_file,
        [
            GroupMember(
                job=os.path.join(job.task_dir, JOB_FILE), stdout=job.stdout, stderr=job.stderr, exit=job.exit_file
            )
            for job in members
        ],
    )
    command: list[str] = []
    if spec.in_container and not first.container_mode:
        own = [folder, *(path for job in members for path in (job.task_dir, job.log_dir))]
        folders = container.job_folders([job.task for job in members], spec, plan.working_dir, own)
        command = container.command(
            first.task_id, spec, first.identity, plan.working_dir, folders, [script, "--inside"]
        )
    shared = replace(
        plan,
        title=f"{len(members)} tasks in one job: {', '.join(job.task_id for job in members)}",
        wrapper_path=script,
        container_command=command,
        job_file=group_file,
        exit_file=os.path.join(folder, EXIT_FILE),
        job_server_python="",
        members=[(job.exit_file, job.stderr) for job in members],
    )
    write_script(script, render(shared))
    return _group_job(first, script, folder)


def one_after_another(members: list[PreparedJob]) -> PreparedJob:
    """One job that runs several prepared jobs one after another, each with its own wrapper, logs and record."""
    folder = _new_group_folder()
    script = os.path.join(folder, WRAPPER_FILE)
    lines = [
        "#!/bin/bash",
        f"# b2box group job: {len(members)} tasks, one after another (tasks_per_job)",
        *ANNOUNCE_LOCAL_JOB,
        "# All members report the same batch job id.",
        'export B2BOX_JOB_ID="${B2BOX_JOB_ID:-${LSB_JOBID:-${SLURM_JOB_ID:-local-$$}}}"',
        "b2box_status=0",
    ]
    for member in members:
        lines.append(
            f"/bin/bash {shlex.quote(member.wrapper)} > {shlex.quote(member.stdout)} "
            f"2> {shlex.quote(member.stderr)} || b2box_status=1"
        )
    lines += ['exit "$b2box_status"', ""]
    write_script(script, "\n".join(lines))
    return _group_job(members[0], script, folder)


def _environment_key(spec: EnvSpec, plan: WrapperPlan) -> str:
    """What must be equal for jobs to share a container and a Python (the script is the run's own)."""
    return json.dumps([spec.model_dump(mode="json"), plan.working_dir, plan.env], sort_keys=True)


def _new_group_folder() -> str:
    folder = os.path.join(state_dir(), GROUP_FOLDER)
    os.makedirs(folder, exist_ok=True)
    return tempfile.mkdtemp(prefix="group-", dir=folder)


def _group_job(first: PreparedJob, script: str, folder: str) -> PreparedJob:
    """The group job as backends see it: named after its first task, logging into its own folder."""
    return PreparedJob(
        task_id=f"group:{first.task_id}",
        task=first.task,
        wrapper=script,
        log_dir=folder,
        task_dir=folder,
        identity=first.identity,
        container_image=first.container_image,
        container_mode=first.container_mode,
        request_memory=first.request_memory,
        attempt=first.attempt,
    )
