"""The pure parts of the gbasf2 backend: project names, the submit command, the steering file, project states and
the completeness of a downloaded dataset.

A grid project's jobs are judged from DIRAC's states (DIRAC's JobStatus.py): Submitting, Received, Checking,
Staging, Waiting, Matched, Rescheduled, Running and Completing are under way; Completed is too (it becomes Done or
Failed); Done with ApplicationStatus Done succeeded; Done with any other ApplicationStatus, Failed, Stalled and
Killed failed (the last three can be rescheduled); Deleted is gone for good. A project with a job that failed and
cannot be retried ends as failed, whatever its other jobs do, so no project is polled forever.

No DIRAC status names a kill for memory: DIRAC's Watchdog only logs a warning past a job's memory limit (and that
check is off by default, CheckMemoryLimitFlag), and JobMinorStatus has no memory status; a payload a site killed
for its memory ends Failed with "Application Finished With Errors" (its ApplicationStatus the script step's exit,
e.g. "'basf2helper.py' Exited With Status 9"), a pilot killed with it Stalled, then Failed with "Job stalled: pilot
not running" -- the words of any other crash. So a grid job counts as killed for memory only when its
MinorStatus or ApplicationStatus says so in words (a site's or an extension's text naming the memory limit, out
of memory, OOM), never from a signal or a stall.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from b2box.batch.backends.gbasf2.settings import GridSettings

MAX_NAME = 32
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
UNDER_WAY = {"Submitting", "Received", "Checking", "Staging", "Waiting", "Matched", "Rescheduled", "Running",
             "Completing", "Completed"}  # fmt: skip
RESCHEDULABLE = {"Failed", "Stalled", "Killed"}
GONE = {"Deleted"}
PICKLE_FILE = "serialized_basf2_path.pkl"
STEERING_FILE = "steering_file_wrapper.py"
PROVENANCE_MARK = "b2box-provenance "
# words of a status that names a kill for memory: "exceeded memory limit", "out of memory", "OOM", "MEMLIMIT"
_MEMORY_KILL = re.compile(
    r"memory\W+(?:\w+\W+)?(?:limit|exceeded)|(?:exceed\w*|out of|killed for)\W+(?:\w+\W+)?memory|\bOOM|MEMLIMIT",
    re.IGNORECASE,
)


class GridSetupError(ValueError):
    """A task cannot go to the grid as configured; the message names the setting."""


def project_name(task_id: str, grid: GridSettings) -> str:
    """``gbasf2_project_name_prefix`` + the first characters of md5(task id), as b2luigi names projects (so a
    project b2luigi submitted is found again); checked against gbasf2's rules before anything is submitted."""
    if not grid.project_name_prefix:
        raise GridSetupError("set gbasf2_project_name_prefix (a parameter, attribute or setting of the task)")
    name = grid.project_name_prefix + hashlib.md5(task_id.encode()).hexdigest()[: grid.project_name_hash_length]
    if len(name) > MAX_NAME:
        raise GridSetupError(
            f"project name {name!r} has {len(name)} characters; gbasf2 allows {MAX_NAME}. Shorten "
            f"gbasf2_project_name_prefix to at most {MAX_NAME - grid.project_name_hash_length} characters, or lower "
            "gbasf2_project_name_hash_length (6 to 10)."
        )
    if not _NAME.match(name):
        raise GridSetupError(
            f"project name {name!r} has characters gbasf2 does not allow: use only letters, digits, '_' and '-' in "
            "gbasf2_project_name_prefix"
        )
    return name


def submit_command(name: str, release: str, grid: GridSettings, sandbox_files: Iterable[str]) -> list[str]:
    """``gbasf2 steering_file_wrapper.py -p NAME -s RELEASE ...`` with b2luigi's options (run in the sandbox)."""
    if grid.input_dataset and grid.input_dslist:
        raise GridSetupError("set either gbasf2_input_dataset or gbasf2_input_dslist, not both")
    if not grid.input_dataset and not grid.input_dslist:
        raise GridSetupError("set gbasf2_input_dataset (or gbasf2_input_dslist): the grid project needs input data")
    command = ["gbasf2", STEERING_FILE, "-p", name, "-s", release]
    files = list(sandbox_files)
    if files:
        command += ["-f", *files]
    if grid.lfn_sandboxfiles:
        command.append("--lfn_sandboxfiles")
    if grid.noscout:
        command.append("--noscout")
    if grid.input_dataset:
        command += ["-i", ",".join(grid.input_dataset)]
    else:
        command += ["--input_dslist", grid.input_dslist]
    if grid.repetitions:
        command += ["--repetition", str(grid.repetitions)]
    if grid.input_datafiles:
        command += ["--input_datafiles", *grid.input_datafiles]
    if grid.force_submission:
        command.append("--force")
    for option, value in (("--cputime", grid.cputime), ("--evtpersec", grid.evtpersec),
                          ("--priority", grid.priority), ("--jobtype", grid.jobtype),
                          ("--input_grouping", grid.input_grouping)):  # fmt: skip
        if value not in (None, ""):
            command += [option, str(value)]
    if grid.basf2opt:
        command.append(f"--basf2opt={grid.basf2opt}")
    if grid.proxy_group != "belle":
        if not grid.project_lpn_path:
            raise GridSetupError("with a gbasf2_proxy_group other than 'belle', set gbasf2_project_lpn_path too")
        command += ["--output_ds", f"{grid.project_lpn_path}/{name}"]
    if grid.additional_params:
        command += shlex.split(grid.additional_params)
    return command


def steering_file(max_event: int, custom: str = "") -> str:
    """The grid job's steering file: it restores the pickled path (with its aliases, global tags and log level),
    reports what it runs with on a ``b2box-provenance`` line of its output, and processes the path. With a custom
    steering file (``gbasf2_custom_steering_file``), that file is run after the report instead."""
    report = f"""import json, os, sys
def _b2box_report():
    try:
        import basf2.version
        version = basf2.version.get_version()
    except Exception:
        version = ""
    print("{PROVENANCE_MARK}" + json.dumps({{
        "release": os.environ.get("BELLE2_RELEASE", ""), "basf2_version": version,
        "site": os.environ.get("DIRACSITE", ""), "dirac_job_id": os.environ.get("DIRACJOBID", ""),
        "python": sys.version.split()[0]}}))
    sys.stdout.flush()
_b2box_report()
"""
    if custom:
        return report + f"import runpy\nrunpy.run_path({custom!r}, run_name='__main__')\n"
    return (
        report
        + f"""import pickle
import basf2
from basf2 import pickle_path
with open({PICKLE_FILE!r}, "rb") as handle:
    serialized = pickle.load(handle)
try:
    from variables import variables as manager
    for alias, variable in serialized.get("aliases", {{}}).items():
        manager.addAlias(alias, variable)
except ImportError:
    pass
basf2.conditions.globaltags += serialized.get("globaltags", [])
if "log_level" in serialized:
    basf2.set_log_level(serialized["log_level"])
path = pickle_path.deserialize_path(serialized)
basf2.print_path(path)
basf2.process(path, max_event={int(max_event)})
print(basf2.statistics)
"""
    )


@dataclass
class ProjectState:
    """What a project's jobs say, summed up."""

    jobs: int = 0
    done: list[str] = field(default_factory=list)
    under_way: list[str] = field(default_factory=list)
    retryable: list[str] = field(default_factory=list)  # Failed, Stalled, Killed: gb2_job_reschedule takes them
    final_failures: dict[str, str] = field(default_factory=dict)  # job id -> why it cannot be retried
    unknown: dict[str, str] = field(default_factory=dict)  # job id -> a state b2box does not know

    @property
    def complete(self) -> bool:
        return self.jobs > 0 and len(self.done) == self.jobs


def project_state(jobs: Mapping[str, Mapping[str, Any]]) -> ProjectState:
    """Sum up ``{job id: {"Status": ..., "ApplicationStatus": ...}}`` (see the module docstring)."""
    state = ProjectState(jobs=len(jobs))
    for job_id, job in sorted(jobs.items()):
        status, application = str(job.get("Status", "")), str(job.get("ApplicationStatus", ""))
        if status == "Done":
            if application == "Done":
                state.done.append(job_id)
            else:
                state.final_failures[job_id] = f"Done, but its application ended with {application!r}"
        elif status in RESCHEDULABLE:
            state.retryable.append(job_id)
        elif status in GONE:
            state.final_failures[job_id] = f"{status} (removed from the grid)"
        elif status in UNDER_WAY:
            state.under_way.append(job_id)
        else:
            state.unknown[job_id] = status
            state.under_way.append(job_id)
    return state


def killed_for_memory(job: Mapping[str, Any]) -> bool:
    """Whether a grid job's statuses say in words that it was stopped for its memory (see the module docstring)."""
    return any(_MEMORY_KILL.search(str(job.get(key, ""))) for key in ("MinorStatus", "ApplicationStatus"))


def describe_failure(job: Mapping[str, Any]) -> str:
    """One line for a failed grid job: its states as DIRAC reports them."""
    return f"{job.get('Status')}: {job.get('MinorStatus', '')} (application: {job.get('ApplicationStatus', '')})"


_V5 = re.compile(r"^(.*_job\d+)_(\d+)(\..+)$")


def unique_lfns(lfns: Iterable[str]) -> set[str]:
    """Only the newest reschedule of each job's output (gbasf2 v5 keeps the old ``_00`` beside the new ``_01``,
    b2luigi#61); LFNs not named the v5 way are kept as they are."""
    named = list(lfns)
    if not all(_V5.match(lfn.rsplit("/", 1)[-1]) for lfn in named):
        return set(named)

    def key(lfn: str) -> str:
        match = _V5.match(lfn.rsplit("/", 1)[-1])
        assert match is not None
        return match.group(1) + match.group(3)

    return {max(group, key=lambda lfn: int(_V5.match(lfn.rsplit("/", 1)[-1]).group(2)))  # type: ignore[union-attr]
            for _, group in itertools.groupby(sorted(named, key=key), key=key)}  # fmt: skip


def split_extensions(file_name: str) -> tuple[str, str]:
    """``"B.udst.root"`` -> ``("B", ".udst.root")``."""
    stem, dot, extensions = file_name.partition(".")
    return stem, dot + extensions


def dataset_query(file_name: str, project: str, user: str, grid: GridSettings) -> str:
    """The LFN pattern of a project's outputs named like ``file_name`` (absolute, ``sub*`` for every data block)."""
    if file_name != file_name.rsplit("/", 1)[-1]:
        raise GridSetupError(f"grid outputs must be plain file names, not paths: {file_name!r}")
    stem, extensions = split_extensions(file_name)
    if not extensions.endswith(".root"):
        raise GridSetupError(f"grid outputs must be .root files, not {file_name!r}")
    if grid.proxy_group != "belle":
        if not grid.project_lpn_path:
            raise GridSetupError("with a gbasf2_proxy_group other than 'belle', set gbasf2_project_lpn_path too")
        base = grid.project_lpn_path
    else:
        base = f"/belle/user/{user}"
    return f"{base}/{project}/sub*/{stem}_*{extensions}"
