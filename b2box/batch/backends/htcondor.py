"""HTCondor: one cluster per wave, one query per poll for all of the workflow's jobs.

The schedd is reached through HTCondor's Python bindings (``htcondor2``, or
the older ``htcondor`` module) when they are importable, else through
``condor_submit``/``condor_q``/``condor_rm``. Both paths share the pure parts
below: the submit description of a wave, and the mapping of job ads to
:class:`~b2box.batch.backends.base.JobStatus`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from b2box.batch import transfer
from b2box.batch.backends.arrays import ArrayBackend, LimitKind, Limits
from b2box.batch.backends.base import Capabilities, JobStatus
from b2box.batch.backends.htcondor_ads import (
    HISTORY,
    LIMITS,
    PROJECTION,
    clusters_constraint,
    limit_of_refusal,
    limits_of,
    number_of,
    statuses,
    what_htcondor_says,
)
from b2box.batch.jobs import PreparedJob
from b2box.batch.memory import with_request
from b2box.batch.retry import BatchCalls, CallFailed, looks_transient
from b2box.batch.waves import Wave
from b2box.errors import B2BoxError, TaskDefinitionError
from b2box.settings.declared import SettingGroup
from b2box.settings.resolved import run_group, settings_of
from b2box.settings.sizes import megabytes

if TYPE_CHECKING:
    from b2box.env.spec import EnvSpec
    from b2box.settings.types import PositiveInt


class HTCondorSettings(SettingGroup):
    """HTCondor's own settings."""

    htcondor_settings: dict[str, Any] = {}
    """Lines of the HTCondor submit description, e.g. ``{"request_memory": "2 GB"}``."""
    htcondor_container: Literal["wrapper", "container_image", "singularity_image"] = "wrapper"
    """Who starts an HTCondor job's container: b2box's wrapper, or HTCondor itself (``container_image``,
    ``singularity_image`` in the submit description)."""
    htcondor_interface: Literal["auto", "bindings", "cli"] = "auto"
    """How b2box talks to HTCondor: its Python bindings, its command-line tools, or the bindings when importable."""
    htcondor_max_idle: PositiveInt = 1000
    """A submission of more jobs than this is late-materialised: the schedd keeps this many idle and makes the rest
    as they start (``max_idle``), so a large wave does not fill the queue at once."""
    htcondor_max_jobs_per_submission: PositiveInt | None = None
    """Most jobs in one submission; unset: the schedd's ``MAX_JOBS_PER_SUBMISSION`` (20,000 by default)."""


_INTERFACES = {"auto": None, "bindings": True, "cli": False}  # htcondor_interface -> use the bindings?


def _bindings() -> Any:
    for name in ("htcondor2", "htcondor"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def quote_argument(value: str) -> str:
    """One word in HTCondor's new ``arguments`` syntax (wrapped in double quotes by the caller)."""
    return "'" + value.replace('"', '""').replace("'", "''") + "'"


def classad_string(value: str) -> str:
    """A ClassAd string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def container_lines(mode: str, image: str) -> dict[str, str]:
    """HTCondor starts the image itself: the container universe, or a site's ``+SingularityImage`` convention."""
    if mode == "container_image":
        # shared filesystem: the worker node reads the image where it is, nothing is transferred
        return {"universe": "container", "container_image": image, "transfer_container": "false"}
    if mode == "singularity_image":
        return {"+SingularityImage": classad_string(image)}
    return {}


def transfer_lines(wave: Wave) -> dict[str, str]:
    """No shared filesystem: HTCondor carries the launcher and each job's bundle in, its results out."""
    returned = wave.path("$(ProcId)", "log", transfer.RETURNED)
    return {
        "executable": wave.path(transfer.LAUNCHER_FILE),
        "transfer_executable": "true",
        "arguments": "",
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "transfer_input_files": wave.path("$(ProcId)", "log", transfer.BUNDLE),
        "transfer_output_files": transfer.RETURNED,
        "transfer_output_remaps": f'"{transfer.RETURNED} = {returned}"',
    }


def submit_description(
    wave: Wave,
    job_name: str | None,
    settings: Mapping[str, Any],
    container: tuple[str, str] = ("", ""),
    moving: bool = False,
) -> dict[str, str]:
    """The submit description of a wave: every job runs ``bash <wave>/<ProcId>/job.sh`` (in ``container``'s
    image when HTCondor starts it: (mode, image))."""
    description = {
        "universe": "vanilla",
        "executable": "/bin/bash",
        "transfer_executable": "false",
        "arguments": '"' + quote_argument(wave.path("$(ProcId)", "job.sh")) + '"',
        "output": wave.path("$(ProcId)", "log", "stdout"),
        "error": wave.path("$(ProcId)", "log", "stderr"),
        "log": wave.path("events.log"),
        "environment": '"B2BOX_JOB_ID=$(ClusterId).$(ProcId)"',
        "getenv": "false",
        "+B2BoxWave": classad_string(wave_attribute(wave)),
        **container_lines(*container),
        **(transfer_lines(wave) if moving else {}),
    }
    if job_name:
        description["JobBatchName"] = '"' + job_name.replace('"', "'") + '"'
    for key, value in settings.items():
        description[str(key)] = str(value)
    return description


def refusal(condor: HTCondorSettings, job_name: str) -> str:
    """Why a task's HTCondor settings cannot go into a submit description (a line break would add lines of its
    own to it), or empty."""
    if "\n" in job_name or "\r" in job_name:
        return "setting 'job_name' contains a line break; remove it"
    for key, value in condor.htcondor_settings.items():
        if any(mark in f"{key}{value}" for mark in ("\n", "\r")):
            return f"setting 'htcondor_settings' entry {key!r} contains a line break; write it on one line"
    return ""


def wave_attribute(wave: Wave) -> str:
    """The value of ``B2BoxWave`` that finds a wave's cluster again (after a submission whose answer was lost)."""
    return wave.tag


def _removed(done: Any) -> bool:
    text = f"{done.stdout}{done.stderr}".lower()
    return done.returncode == 0 or "couldn't find" in text or "not found" in text or "no jobs" in text


def _failed(error: Exception, transient: bool) -> CallFailed:
    return CallFailed(f"{type(error).__name__}: {error}", transient=transient or looks_transient(str(error)))


class HTCondorBackend(ArrayBackend):
    """Submits and follows jobs on the local schedd, every call under the retry policy."""

    name = "htcondor"
    refused_by = "HTCondor refused the job"
    capabilities = Capabilities(transfers_files=True)

    def __init__(self, calls: BatchCalls | None = None, use_bindings: bool | None = None) -> None:
        if use_bindings is None:
            use_bindings = _INTERFACES[run_group(HTCondorSettings).htcondor_interface]
        self._module: Any = _bindings() if use_bindings in (None, True) else None
        if use_bindings and self._module is None:
            raise B2BoxError("HTCondor's Python bindings are not importable; install htcondor (pip) or use the CLI.")
        self._schedd_object: Any = None
        super().__init__(calls)

    def check_available(self) -> None:
        if self._module is None and not shutil.which("condor_submit"):
            raise B2BoxError("batch_system 'htcondor': neither HTCondor's Python bindings nor condor_submit found.")

    @classmethod
    def managed_container(cls, task: Any, spec: EnvSpec) -> str:
        """``htcondor_container``: HTCondor, not the wrapper, starts the task's Apptainer image."""
        mode = settings_of(task).group(HTCondorSettings).htcondor_container
        if mode == "wrapper" or not spec.in_container:
            return ""
        if spec.runtime != "apptainer":
            raise TaskDefinitionError(
                f"{task.task_id}: htcondor_container {mode!r} starts Apptainer images; "
                f"{spec.image!r} runs with {spec.runtime}. Use a SIF, a sandbox or docker://, "
                "or htcondor_container 'wrapper'."
            )
        if spec.binds or spec.extra_args or spec.gpus:
            raise TaskDefinitionError(
                f"{task.task_id}: with htcondor_container {mode!r} the site decides binds and "
                "options; remove binds, extra_args and gpus (use htcondor_settings) or use "
                "htcondor_container 'wrapper'."
            )
        return mode

    @property
    def via(self) -> str:
        return "bindings" if self._module is not None else "command line"

    def _schedd(self) -> Any:
        """The schedd, located on first use (locating it is a call that can fail like any other)."""
        if self._schedd_object is None:
            try:
                self._schedd_object = self._module.Schedd()
            except Exception as error:  # the bindings raise their own classes (HTCondorLocateError ...)
                raise _failed(error, transient=True) from None
        return self._schedd_object

    def refusal(self, job: PreparedJob) -> str:
        settings = settings_of(job.task)
        return refusal(settings.group(HTCondorSettings), settings.batch.job_name)

    def group_key(self, job: PreparedJob) -> Hashable:
        """Jobs that share settings (the image HTCondor starts, if any, and file transfer) share a cluster."""
        settings = settings_of(job.task)
        lines = json.dumps(settings.group(HTCondorSettings).htcondor_settings, sort_keys=True, default=str)
        return (settings.batch.job_name, lines, job.container_mode, job.container_image, job.transfer)

    def find_limits(self) -> Limits:
        """The schedd's ``MAX_JOBS_PER_SUBMISSION`` and ``MAX_JOBS_PER_OWNER``, read once per run."""
        own = run_group(HTCondorSettings)
        if self._module is not None:
            config = {name: self._module.param.get(name) for name in LIMITS}
        else:
            done = self.retry.run_once(["condor_config_val", *LIMITS], always_transient=True, accept=lambda d: True)
            config = dict(zip(LIMITS, [line.strip() for line in done.stdout.splitlines()], strict=False))
        return limits_of(config, own.htcondor_max_jobs_per_submission)

    def limit_refused(self, message: str) -> LimitKind:
        return limit_of_refusal(message)

    def submit_array(self, wave: Wave) -> str:
        first = wave.jobs[0]
        settings = settings_of(first.task)
        job_name, lines = settings.batch.job_name, settings.group(HTCondorSettings).htcondor_settings
        if first.transfer:
            with open(wave.path(transfer.LAUNCHER_FILE), "w", encoding="utf-8") as handle:
                handle.write(transfer.LAUNCHER)
        container = (first.container_mode, first.container_image)
        request = ("request_memory", str(megabytes(first.request_memory or 0)))
        lines = with_request(first.task, first.request_memory, lines, (request[0],), request, "htcondor_settings")
        description = submit_description(wave, job_name or None, lines, container, first.transfer)
        count = len(wave.jobs)
        max_idle = run_group(HTCondorSettings).htcondor_max_idle
        if count > max_idle:  # late materialisation: the schedd makes the jobs as the idle ones start
            description["max_idle"] = str(max_idle)
        if self._module is not None:
            try:
                submit = self._module.Submit(description)
                if "max_idle" in description:
                    submit.setQArgs(str(count))  # (a factory takes its size from the queue statement, not count=)
                    return str(self._schedd().submit(submit).cluster())
                return str(self._schedd().submit(submit, count=count).cluster())
            except CallFailed:
                raise
            except Exception as error:
                raise _failed(error, transient=False) from None
        path = wave.path("submit.sub")
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(f"{key} = {value}\n" for key, value in description.items())
            handle.write(f"queue {len(wave.jobs)}\n")
        done = self.retry.run_once(["condor_submit", "-terse", path])
        return str(int(done.stdout.split(".")[0]))

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        """One query for the jobs whose ``B2BoxWave`` attribute is one of the waves' tags."""
        constraint = "member(B2BoxWave, {" + ", ".join(classad_string(wave_attribute(w)) for w in waves) + "})"
        clusters: dict[str, int] = {}
        for ad in self._query(constraint, [*PROJECTION, "B2BoxWave"]):
            number, tag = number_of(ad.get("ClusterId")), str(ad.get("B2BoxWave", ""))
            if number is not None:
                clusters[tag] = min(number, clusters.get(tag, number))
        return {tag: str(number) for tag, number in clusters.items()}

    def job_id(self, array_id: str, index: int) -> str:
        return f"{array_id}.{index}"

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return statuses(job_ids, self.retry.call("status query", lambda: self._ads_of(job_ids)))

    def _ads_of(self, job_ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The job ads of ``job_ids``' clusters. The bindings bring the clusters' own ads along; ``condor_q`` does
        not, so where a cluster has no job in the queue any more, its factory (a late-materialising cluster between
        two jobs) is asked for once more, with ``condor_q -factory``."""
        ads = self._query(clusters_constraint(job_ids))
        if self._module is not None:
            return ads
        present = {number_of(ad.get("ClusterId")) for ad in ads}
        empty = [job_id for job_id in job_ids if int(job_id.split(".")[0]) not in present]
        if empty:
            ads += self._query(clusters_constraint(empty), ["ClusterId", "JobMaterializeNextProcId"], ["-factory"])
        return ads

    def _query(
        self, constraint: str, projection: Sequence[str] = PROJECTION, options: Sequence[str] = ()
    ) -> list[Mapping[str, Any]]:
        """One query (raises :class:`CallFailed`, transient: a query is always worth another try); with the
        bindings, the ads of late-materialising clusters come along (which jobs they have not made yet)."""
        if self._module is not None:
            with_clusters = getattr(getattr(self._module, "QueryOpt", None), "IncludeClusterAd", None)
            extra = {"opts": with_clusters} if with_clusters is not None else {}
            try:
                ads = self._schedd().query(constraint=constraint, projection=list(projection), **extra)
                return [dict(ad) for ad in ads]
            except CallFailed:
                raise
            except Exception as error:
                raise _failed(error, transient=True) from None
        done = self.retry.run_once(
            ["condor_q", *options, "-json", "-constraint", constraint, "-attributes", ",".join(projection)],
            always_transient=True,
        )
        text = done.stdout.strip()
        try:
            return list(json.loads(text)) if text else []
        except ValueError as error:
            raise CallFailed(f"condor_q printed no valid JSON ({error})", transient=True) from None

    def remove(self, job_ids: Sequence[str]) -> None:
        self.retry.call("removal", lambda: self._remove(job_ids))

    def explain(self, job_ids: Sequence[str]) -> dict[str, str]:
        """What HTCondor's history recorded of ended jobs (removed by whom, the exit code or signal it saw)."""
        said = {}
        processes = sorted({int(job_id.split(".")[1]) for job_id in job_ids})
        constraint = clusters_constraint(job_ids) + " && member(ProcId, {" + ", ".join(map(str, processes)) + "})"
        for ad in self._history(constraint):
            cluster, process = number_of(ad.get("ClusterId")), number_of(ad.get("ProcId"))
            sentence = what_htcondor_says(ad)
            if cluster is not None and process is not None and sentence:
                said[f"{cluster}.{process}"] = sentence
        return {job_id: said[job_id] for job_id in job_ids if job_id in said}

    def _history(self, constraint: str) -> list[Mapping[str, Any]]:
        if self._module is not None:
            return [dict(ad) for ad in self._schedd().history(constraint, HISTORY)]
        done = self.retry.run_once(
            ["condor_history", "-json", "-constraint", constraint, "-attributes", ",".join(HISTORY)],
            always_transient=True,
        )
        text = done.stdout.strip()
        return list(json.loads(text)) if text else []

    def _remove(self, job_ids: Sequence[str]) -> None:
        if self._module is not None:
            try:
                self._schedd().act(self._module.JobAction.Remove, list(job_ids))
            except CallFailed:
                raise
            except Exception as error:
                raise _failed(error, transient=True) from None
            return
        # condor_rm fails for jobs that already left the queue: that is what removal wants anyway
        self.retry.run_once(["condor_rm", *job_ids], always_transient=True, accept=_removed)
