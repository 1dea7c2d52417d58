"""What a grid project leaves here when its jobs are done: their logs, a provenance record, and its dataset.

A complete project's outputs are downloaded into ``<output>.partial``, retried for the failed files only, checked
against the project's file list (the newest reschedule of each job, every ``sub*`` block) and moved into place
only when complete; the logs and a provenance record (release, basf2 version, site, DIRAC job id and reschedules of
every job) land in the task's log folder.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from b2box.api.structure import flatten_to_dict
from b2box.batch.backends.gbasf2 import projects
from b2box.batch.backends.gbasf2.session import GridSession
from b2box.batch.backends.gbasf2.settings import GridSettings
from b2box.batch.jobs import PreparedJob
from b2box.batch.retry import CallFailed
from b2box.job.files import read_json, write_json

LOG_FOLDER = "gbasf2_logs"
PROJECT_FILE = "gbasf2_project.json"  # what was submitted: project, release, gbasf2 version, input


def fetch_logs(session: GridSession, job: PreparedJob, name: str, environment: Mapping[str, str],
               only: list[str] | None = None) -> None:  # fmt: skip
    """The jobs' output sandboxes (std.out, the basf2 log) into ``<log folder>/gbasf2_logs/<job id>``."""
    target = os.path.join(job.log_dir, LOG_FOLDER)
    with tempfile.TemporaryDirectory(prefix="b2box-gb2-logs-") as scratch:
        selection = ["-j", *only] if only else ["-p", name]
        try:
            command = ["gb2_job_output", *session.user_option(), *selection]
            session.gb2("log download", command, environment, cwd=scratch)
        except CallFailed as error:
            session.retry.note(f"b2box: project {name}: logs not downloaded ({error})")
            return
        for folder in glob.glob(os.path.join(scratch, "log", "**", "*"), recursive=True):
            if os.path.isdir(folder) and os.path.basename(folder).isdigit():
                destination = os.path.join(target, os.path.basename(folder))
                shutil.rmtree(destination, ignore_errors=True)
                shutil.copytree(folder, destination)


def write_provenance(session: GridSession, job: PreparedJob, name: str, jobs: Mapping[str, Mapping[str, Any]]) -> None:
    """The task's provenance record: the project, its release and input, and what each grid job reported."""
    project = read_json(os.path.join(job.log_dir, PROJECT_FILE)) or {"project": name}
    records = []
    for job_id, info in sorted(jobs.items()):
        record = {"dirac_job_id": job_id, "site": info.get("Site", ""),
                  "reschedules": int(info.get("RescheduleCounter") or 0), "status": info.get("Status")}  # fmt: skip
        record.update(_reported(os.path.join(job.log_dir, LOG_FOLDER, job_id, "std.out")))
        records.append(record)
    write_json(job.provenance_file, {
        "task_id": job.task_id, "task_family": job.task.task_family, "backend": "gbasf2", "job_id": name,
        "gbasf2_version": session.version, "release": project.get("release", ""), "input": project.get("input", []),
        "start_time": project.get("submitted", ""), "end_time": now(), "jobs": records,
        "image": {"runtime": "grid", "reference": "chosen by the grid site", "digest": ""},
    })  # fmt: skip


def download_outputs(session: GridSession, job: PreparedJob, name: str, environment: Mapping[str, str],
                     grid: GridSettings) -> str:  # fmt: skip
    """Every output into ``<output>.partial``, then into place once complete; '' or what is still missing."""
    for key, target in sorted(_outputs(job.task).items()):
        query = projects.dataset_query(key, name, session.user, grid)
        answer = session.ask(environment, "lfns", session.user, query)
        expected = {lfn.rsplit("/", 1)[-1] for lfn in projects.unique_lfns(answer)}
        if not expected:
            return f"{key}: the project has no such output"
        if os.path.isdir(target.path) and set(os.listdir(target.path)) == expected:
            continue  # downloaded by an earlier run
        missing = _download_one(session, key, target.path, query, expected, environment, grid)
        if missing:
            return missing
    return ""


def _download_one(session: GridSession, key: str, final: str, query: str, expected: set[str],
                  environment: Mapping[str, str], grid: GridSettings) -> str:  # fmt: skip
    """One output dataset into ``<final>.partial`` (only the files that failed last time, if any), then moved into
    place at once when complete; '' or what is missing."""
    partial = final + ".partial"
    os.makedirs(partial, exist_ok=True)
    failed = os.path.join(partial, "failed_files.txt")
    old = os.path.join(partial, "failed_files_old.txt")
    command = ["gb2_ds_get", *grid.additional_download_params.split(), "--force", query, "--failed_lfns", failed]
    if os.path.isfile(failed) and os.path.getsize(failed):
        os.replace(failed, old)  # only the files that failed last time
        command += ["--input_dslist", old]
    done = session.gb2("download", command, environment, cwd=partial)
    if "No file found" in done.stdout:
        return f"{key}: gb2_ds_get found no file"
    files = {
        os.path.basename(path): path
        for path in glob.glob(os.path.join(partial, "**", "sub*", "*"), recursive=True)
        if os.path.isfile(path)
    }
    for superfluous in set(files) - expected:  # an older reschedule's file: never part of the output
        os.remove(files.pop(superfluous))
    missing = expected - set(files)
    if missing:
        return f"{key}: {len(missing)} of {len(expected)} files missing"
    moving = final + ".b2box-moving"
    shutil.rmtree(moving, ignore_errors=True)
    os.makedirs(moving)
    for base, path in files.items():
        os.replace(path, os.path.join(moving, base))
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(moving, final)  # the complete dataset appears at once
    shutil.rmtree(partial, ignore_errors=True)
    return ""


def _outputs(task: Any) -> dict[str, Any]:
    """``{output name: target}``: the names ``add_to_output`` gave (a bare target's name is its file name)."""
    return {os.path.basename(str(key)) if not isinstance(key, str) else key: target
            for key, target in flatten_to_dict(task.output()).items()}  # fmt: skip


def _reported(path: str) -> dict[str, Any]:
    """What a grid job's steering file reported about itself (the ``b2box-provenance`` line of its std.out)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(projects.PROVENANCE_MARK):
                    return dict(json.loads(line[len(projects.PROVENANCE_MARK) :]))
    except (OSError, ValueError):
        pass
    return {}


def now() -> str:
    """The time, as the grid records write it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
