"""What a job used (wall time, CPU time, peak memory) and whether the kernel killed it for memory.

Measured by the process that waits for the job's process (the job's first Python, a group job for each of its
tasks, the local job server), from what the kernel reports when that process ends (``wait4``): the figures cover the
task's whole process tree, and they survive the task being killed, which is when they matter most. The waiting
process writes them into the job's ``provenance.json`` (``usage``), or, when the task died before it could write
that file, a short record of its own naming the cause.

Peak memory is the largest resident set of any process of the tree (what Slurm and HTCondor hold a job to, per
process); where the job has a memory cgroup of its own (a Docker container, a batch system's cgroup), that cgroup's
peak is recorded beside it. "Killed for memory" means: killed by SIGKILL while the kernel's OOM killer acted in the
job's memory cgroup.

Standard library only: the job's first Python (``b2box/job/bootstrap.py``) loads this file by its path before it
knows where b2box is, and stays small while it waits.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import time
from typing import Any

CGROUP_ROOT = "/sys/fs/cgroup"
# cgroup paths of a job's own cgroup: batch systems' and container engines' names for them
_OWN_CGROUP_MARKS = ("slurm", "condor", "job_", "docker", "libpod", "containerd", "kubepods", "lxc", "b2box")
# signals the waiting process hands on to the task; SIGINT it ignores: Ctrl-C in a terminal and batch systems that
# interrupt a job (LSF, before it kills one for memory or time) send it to all of the job's processes, the task too
FORWARDED = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU", "SIGCONT", "SIGTSTP")


def memory_cgroup() -> tuple[str, bool] | None:
    """(folder of this process's memory cgroup files, whether that cgroup is the job's own); None when unknown."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    unified = os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if unified and controllers == "":
            base = CGROUP_ROOT
        elif not unified and "memory" in controllers.split(","):
            base = os.path.join(CGROUP_ROOT, "memory")
        else:
            continue
        folder = os.path.join(base, path.lstrip("/"))
        if not os.path.isdir(folder):
            folder = base  # a container sees its own cgroup at the root of the mount
        # a container with a cgroup namespace of its own sees its cgroup as the root
        in_container = path == "/" and (os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"))
        return folder, in_container or any(mark in path for mark in _OWN_CGROUP_MARKS)
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except OSError:
        return ""


def oom_kills(folder: str) -> int:
    """How many processes the OOM killer has killed in the cgroup ``folder`` (cgroup v2 ``memory.events``, v1
    ``memory.oom_control``); 0 when unknown."""
    for name in ("memory.events", "memory.oom_control"):
        for line in _read(os.path.join(folder, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return 0


def cgroup_peak(folder: str) -> int | None:
    """The cgroup's peak memory in bytes (v2 ``memory.peak``, v1 ``memory.max_usage_in_bytes``), if it tells."""
    for name in ("memory.peak", "memory.max_usage_in_bytes"):
        text = _read(os.path.join(folder, name)).strip()
        if text.isdigit():
            return int(text)
    return None


def now() -> str:
    """The time as provenance records write it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Watch:
    """One task's process, watched from its parent: started before the fork, read when the process has ended."""

    def __init__(self) -> None:
        self.start_time = now()
        self.epoch = time.time()
        self.started = time.monotonic()
        self.cgroup = memory_cgroup()
        self.oom_before = oom_kills(self.cgroup[0]) if self.cgroup else 0

    def usage(self, status: int, rusage: Any) -> dict[str, Any]:
        """What the process tree used, from ``wait4``'s answer, with ``killed_for_memory`` and the exit cause."""
        killed_by = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        ooms = oom_kills(self.cgroup[0]) - self.oom_before if self.cgroup else 0
        used: dict[str, Any] = {
            "wall_s": round(time.monotonic() - self.started, 3),
            "cpu_s": round(rusage.ru_utime + rusage.ru_stime, 3),
            "peak_rss_bytes": int(rusage.ru_maxrss) * 1024,
        }
        if self.cgroup and self.cgroup[1]:
            used["cgroup_peak_bytes"] = cgroup_peak(self.cgroup[0])
        if killed_by == signal.SIGKILL and ooms > 0:
            used["exit_cause"] = "memory"
        elif killed_by:
            used["exit_cause"] = "killed by signal " + _signal_name(killed_by)
        return used


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def exit_status(status: int) -> int:
    """A process's end as a shell reports it: its exit code, or 128 + the signal that killed it."""
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def wait_for(child: int, watch: Watch) -> tuple[int, dict[str, Any]]:
    """Wait for ``child``, handing it the signals this process gets; (its exit status, what it used)."""
    previous = {}
    for name in FORWARDED:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, lambda signum, frame: _pass_on(child, signum))
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, status, rusage = os.wait4(child, 0)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return exit_status(status), watch.usage(status, rusage)


def _pass_on(child: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(child, signum)


def record(provenance: str, used: dict[str, Any], code: int, about: dict[str, Any], watch: Watch) -> None:
    """Put ``used`` into the job's ``provenance.json``; a task that died before writing it gets a record of its own
    (``about``: what is known of the job without it), so its end and what it used are known all the same."""
    about = dict(about)
    submitted = about.pop("submitted_at", None) or 0.0
    started = watch.start_time
    data: dict[str, Any] | None = None
    try:
        with open(provenance, encoding="utf-8") as handle:
            found = json.load(handle)
        if isinstance(found, dict) and str(found.get("start_time", "")) >= started:
            data = found  # written by this attempt
    except (OSError, ValueError):
        pass
    if data is None:
        data = dict(about, start_time=started, end_time=now(), exit_code=code)
    cause = used.pop("exit_cause", "")
    if cause:
        data["exit_cause"] = cause
    if submitted:
        used["queue_wait_s"] = round(max(0.0, watch.epoch - float(submitted)), 3)
    data["usage"] = used
    temporary = f"{provenance}.tmp.{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(temporary, provenance)
    except OSError:
        pass  # a full log disk: the job's exit record still says how it ended


def about_job(job_file: str) -> tuple[str, dict[str, Any]] | None:
    """(its provenance file, what its record says without the task) of the job described by ``job_file``; None for
    a group job's file (each of its tasks is watched on its own) or a file that cannot be read."""
    try:
        with open(job_file, encoding="utf-8") as handle:
            spec = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(spec, dict) or "log_dir" not in spec:
        return None
    about = {key: spec.get(name) for key, name in (("task_id", "task_id"), ("task_family", "family"),
                                                   ("backend", "backend"), ("parameters", "params"),
                                                   ("submitted_at", "submitted_at"),
                                                   ("request_memory_bytes", "request_memory"),
                                                   ("attempt", "attempt"))}  # fmt: skip
    about["hostname"] = os.uname().nodename
    return os.path.join(spec["log_dir"], "provenance.json"), about


def watched_fork(job_file: str, job_id: str) -> None:
    """Fork the job's process and return in it; this process waits, records what the job used, and exits with the
    job's status. Nothing happens for a group job's file (its tasks are watched one by one)."""
    found = about_job(job_file)
    if found is None:
        return
    provenance, about = found
    about["job_id"] = job_id
    watch = Watch()
    child = os.fork()
    if child == 0:
        die_with_parent()
        return
    code, used = wait_for(child, watch)
    record(provenance, used, code, about, watch)
    os._exit(code)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG): no task runs on unwatched."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
