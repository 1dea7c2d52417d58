"""A stand-in for IBM Spectrum LSF's command-line tools (bsub, bjobs, bkill, lsid) that really runs the jobs.

LSF cannot be installed here, so b2box's LSF backend is tested against this. It is not LSF; it reproduces what
LSF's tools print and how they exit, as documented (../../../../shared/notes/lsf-gbasf2.md, part A and C, gives
each with its source), and runs each job's script with bash, detached from the submitter, like a one-node farm:

- ``bsub [options] [command]``, the script on stdin when no command is given (``bsub < job.sh``), whose ``#BSUB``
  lines are read as options. Success: ``Job <N> is submitted to queue <Q>.`` (with ``-q``) or
  ``Job <N> is submitted to default queue <normal>.`` on stdout, exit 0 (IBM bsub; equinor/ert#7465).
  Errors go to stderr, end with ``Job not submitted.`` and exit 255: ``<Q>: No such queue. Job not submitted.``
  (ert#8774), ``Bad argument for option -n. Job not submitted.`` (a non-numeric ``-n``, b2luigi's ``-n False``;
  the wording is not verified against a real cluster), and the ``Error in rusage section ...`` message for memory
  above the queue's limit (bcbio-nextgen#2803). Arrays: ``-J "name[1-K]"`` (``start[-end[:step]]``, comma
  lists, at most ``max_array_size`` elements, 1000 as LSF's MAX_JOB_ARRAY_SIZE); ``%J``/``%I`` expand in
  ``-o``/``-e``; ``LSB_JOBID``, ``LSB_JOBINDEX`` (1-based) and ``LSB_JOBNAME`` are set for the job.
  ``-oo``/``-eo`` truncate, ``-o``/``-e`` append, and the ``-o`` file starts with LSF's mail-style header
  (``Sender: ...``, ``Subject: Job ...``, ``The output (if any) follows:``, as ert's lsfrunner writes it).
  ``-M <n>[unit][!]`` is the job's memory limit, in KB without a unit (LSF_UNIT_FOR_LIMITS' default), else KB/K,
  MB/M, GB/G, TB/T (IBM bsub -M). It is enforced as LSF does with LSB_JOB_MEMLIMIT=Y: the resident memory of all
  of the job's processes (its session), summed, read from /proc every ``memory_poll`` seconds; over the limit, the
  job gets SIGINT, then SIGTERM, then SIGKILL, ``job_terminate_interval`` seconds apart (LSF's
  JOB_TERMINATE_INTERVAL, 10 s by default, short here), and ends in EXIT with EXIT_REASON ``TERM_MEMLIMIT: job
  killed after reaching LSF memory usage limit`` and the exit code the job ended with, 130 for a job that dies of
  the SIGINT (IBM's LSF job exit information: "Memory limit reached ... TERM_MEMLIMIT ... Exited by signal 2";
  users' job reports show "Exited with exit code 130", and 137 or 143 where a cgroup or the later signals ended
  it).
- ``bjobs [-a] [-u U] [-J NAME] [-noheader] [-o "fields [delimiter='c']"] [-json] [ids]``. ``-json`` needs
  ``-o`` (else ``bjobs: You cannot use the -json option when the -o option is not specified or the
  LSB_BJOBS_FORMAT parameter is not defined.``, signac-flow#166, exit 255) and gives
  ``{"COMMAND":"bjobs","JOBS":n,"RECORDS":[...]}`` with every value a string, field names upper-cased,
  ``EXIT_CODE`` empty for DONE (ibm-granite/granite.build#248), and ``{"JOBID":"<id>","ERROR":"Job <id> is not
  found"}`` for an unknown id (PSI/J skips such records; the exact shape is not verified). The plain form prints
  ``-`` for empty values and ``Job <id> is not found`` on stderr, exit 0, or 255 when known and unknown ids are
  mixed (ert's tests); ``No unfinished job found`` without ids. Finished jobs are listed only with ``-a`` and
  vanish entirely ``clean_period`` seconds after they end (LSF's CLEAN_PERIOD), which is how a backend meets an
  aged-out job. The field ``max_mem`` is the largest memory the job's processes held together, as LSF writes it
  (``12 Kbytes``, ``310 Mbytes``, ``5.2 Gbytes``: the units LSF's bjobs prints, binary), for running and finished
  jobs, empty (``-``) before a job ran.
- ``bkill [-s SIG] ids``: ``Job <N> is being terminated`` (or ``signaled``), exit 0; ``Job <N>: Job has already
  finished`` and ``Job <N>: No matching job found`` on stderr, exit 255 (IBM bkill; ert's tests). A killed job ends
  in EXIT with EXIT_REASON ``TERM_OWNER: job killed by owner``.
- ``lsid``: the version banner.

States: PEND (for ``queue_delay`` seconds, and while all ``slots`` are busy), RUN, DONE or EXIT; UNKWN and SSUSP
can be injected. State lives in $LSF_STANDIN_DIR (one JSON file per job, changed under a file lock); its
``config.json`` sets queue_delay, slots, clean_period, queues, mem_limit_mb, max_array_size,
consistent_exit_code (LSB_BJOBS_CONSISTENT_EXIT_CODE), memory_poll, job_terminate_interval and ``instant``, for
benchmarks of the submitter alone: every element ends DONE (exit 0) the moment it is submitted and its script is
never run. Its ``faults.json``
injects faults, each a count of the next calls it affects: ``bsub_255`` (``Cannot connect to LSF. Please wait
...``, nothing submitted), ``bsub_empty`` (exit 0, empty stdout, the job submitted all the same, as seen in
ert#8089), ``bjobs_255`` (half of the answer, then exit 255), ``unkwn`` and ``ssusp`` (running jobs shown in that
state). Every call is counted in ``calls.log`` there.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

DEFAULTS: dict[str, Any] = {
    "queue_delay": 0.3,
    "slots": 4,
    "clean_period": 3600.0,
    "queues": ["normal", "short", "long"],
    "default_queue": "normal",
    "mem_limit_mb": 64000,
    "max_array_size": 1000,
    "consistent_exit_code": "N",
    "instant": False,
    "memory_poll": 0.1,  # seconds between two readings of a running job's memory
    "job_terminate_interval": 0.3,  # LSF's JOB_TERMINATE_INTERVAL (10 s by default): SIGINT, SIGTERM, SIGKILL
}
FINISHED = ("DONE", "EXIT")
FIELDS = {
    "jobid",
    "jobindex",
    "stat",
    "exit_code",
    "exit_reason",
    "job_name",
    "queue",
    "user",
    "pend_reason",
    "from_host",
    "exec_host",
    "submit_time",
    "start_time",
    "finish_time",
    "job_description",
    "max_mem",
}
MEMLIMIT_REASON = "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"
KILL_SEQUENCE = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
PAGE = os.sysconf("SC_PAGE_SIZE")
HOST = socket.gethostname()
USER = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name


# ------------------------------------------------------------------------------------------------------ state


def state_dir() -> str:
    folder = os.environ.get("LSF_STANDIN_DIR")
    if not folder:
        sys.stderr.write("LSF_STANDIN_DIR is not set: the LSF stand-in needs a state folder.\n")
        sys.exit(255)
    os.makedirs(os.path.join(folder, "jobs"), exist_ok=True)
    return folder


def config() -> dict[str, Any]:
    path = os.path.join(state_dir(), "config.json")
    found = _read(path) or {}
    return {**DEFAULTS, **found}


@contextlib.contextmanager
def locked() -> Iterator[None]:
    with open(os.path.join(state_dir(), "state.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write(path: str, data: Any) -> None:
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def job_path(job_id: int) -> str:
    return os.path.join(state_dir(), "jobs", f"{job_id}.json")


def load_job(job_id: int) -> dict[str, Any] | None:
    return _read(job_path(job_id))


def save_job(job: dict[str, Any]) -> None:
    _write(job_path(job["id"]), job)


def all_jobs() -> list[dict[str, Any]]:
    folder = os.path.join(state_dir(), "jobs")
    found = []
    for name in os.listdir(folder):
        if name.endswith(".json"):
            job = _read(os.path.join(folder, name))
            if job:
                found.append(job)
    return sorted(found, key=lambda job: job["id"])


def take_fault(name: str) -> bool:
    """Whether the fault ``name`` applies to this call (each use counts one down); call under the lock."""
    path = os.path.join(state_dir(), "faults.json")
    faults = _read(path) or {}
    if faults.get(name, 0) > 0:
        faults[name] -= 1
        _write(path, faults)
        return True
    return False


def purge_aged(job: dict[str, Any], now: float, clean_period: float) -> bool:
    """Drop elements that finished more than CLEAN_PERIOD ago; True when nothing of the job is left."""
    for index, element in list(job["elements"].items()):
        if element["stat"] in FINISHED and element["finish"] and now - element["finish"] > clean_period:
            del job["elements"][index]
    return not job["elements"]


def _lsf_time(stamp: float | None) -> str:
    return time.strftime("%b %d %H:%M", time.localtime(stamp)) if stamp else ""


def _next_id() -> int:
    path = os.path.join(state_dir(), "next_id")
    try:
        with open(path) as handle:
            value = int(handle.read().strip() or "100")
    except (OSError, ValueError):
        value = 100
    with open(path, "w") as handle:
        handle.write(str(value + 1))
    return value


# ------------------------------------------------------------------------------------------------------- bsub

_VALUE_OPTIONS = {"-q", "-n", "-J", "-Jd", "-o", "-oo", "-e", "-eo", "-W", "-M", "-R", "-P", "-cwd", "-env", "-G"}


def _fail_submit(message: str) -> int:
    sys.stderr.write(f"{message}. Job not submitted.\n")
    return 255


def parse_bsub(arguments: list[str], script: str) -> tuple[dict[str, str], list[str]] | str:
    """Options (``#BSUB`` lines of a script on stdin first, then the command line win) and the command."""
    words: list[str] = []
    for line in script.splitlines():
        if line.startswith("#BSUB"):
            words += shlex.split(line[len("#BSUB") :])
    words += arguments
    options: dict[str, str] = {}
    position = 0
    while position < len(words):
        word = words[position]
        if not word.startswith("-"):
            break
        if " " in word and word.split(" ", 1)[0] in _VALUE_OPTIONS:
            # "-env all" as one word (b2luigi passes it so): taken as the option and its value. Whether real bsub
            # accepts this is not verified; the stand-in is lenient here.
            option, value = word.split(" ", 1)
            options[option] = value.strip()
            position += 1
            continue
        if word not in _VALUE_OPTIONS:
            return f"{word}: Illegal option"
        if position + 1 >= len(words):
            return f"{word}: Option requires an argument"
        options[word] = words[position + 1]
        position += 2
    return options, words[position:]


_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}


def memory_limit(value: str) -> int | None:
    """``bsub -M``'s limit in bytes: ``204800`` (KB, LSF_UNIT_FOR_LIMITS' default), ``204800KB``, ``200MB``,
    ``2G``, a trailing ``!`` (a hard limit) allowed; None when it is not one."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:([KMGTPE])B?)?!?", value.strip(), re.IGNORECASE)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "K").upper()])


def lsf_memory(used: int | None) -> str:
    """Memory as bjobs prints it (MAX_MEM, MEM): ``12 Kbytes``, ``310 Mbytes``, ``5.2 Gbytes``; empty when unknown."""
    if not used:
        return ""
    if used < 2**20:
        return f"{max(1, round(used / 2**10))} Kbytes"
    if used < 2**30:
        return f"{round(used / 2**20)} Mbytes"
    if used < 2**40:
        return f"{used / 2**30:.1f} Gbytes"
    return f"{used / 2**40:.1f} Tbytes"


def array_indices(spec: str, limit: int) -> list[int] | str:
    """``1-5``, ``1-9:2``, ``1,3,7-9``: the indices, or why not."""
    indices: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if not match:
            return f"Bad job array index list [{spec}]"
        start = int(match.group(1))
        end = int(match.group(2) or start)
        step = int(match.group(3) or 1)
        if start < 1 or end < start or step < 1:
            return f"Bad job array index list [{spec}]"
        indices += list(range(start, end + 1, step))
    if len(indices) > limit:
        return f"Job array size {len(indices)} exceeds the maximum ({limit})"
    return sorted(set(indices))


def bsub(arguments: list[str]) -> int:
    script = "" if (arguments and not arguments[0].startswith("-")) or _has_command(arguments) else sys.stdin.read()
    parsed = parse_bsub(arguments, script)
    if isinstance(parsed, str):
        return _fail_submit(parsed)
    options, command = parsed
    settings = config()
    queue = options.get("-q", settings["default_queue"])
    if queue not in settings["queues"]:
        return _fail_submit(f"{queue}: No such queue")
    if "-n" in options and not (options["-n"].isdigit() and int(options["-n"]) > 0):
        return _fail_submit("Bad argument for option -n")
    memory = re.search(r"rusage\[mem=(\d+)", options.get("-R", ""))
    if memory and int(memory.group(1)) > settings["mem_limit_mb"]:
        return _fail_submit(
            "Error in rusage section: The merged job-level and application-level rusage value is outside the "
            "range set by RESRSV_LIMIT defined in lsb.queues"
        )
    limit = memory_limit(options["-M"]) if "-M" in options else None
    if "-M" in options and limit is None:
        return _fail_submit(f"{options['-M']}: Bad memory limit specification")  # wording not verified
    name = options.get("-J", "")
    indices: list[int] | str = [0]
    array = re.fullmatch(r"(.*)\[([^\]]*)\]", name)
    if array:
        name = array.group(1)
        indices = array_indices(array.group(2), settings["max_array_size"])
        if isinstance(indices, str):
            return _fail_submit(indices)
    if not script and not command:
        return _fail_submit("No command or script given")
    with locked():
        if take_fault("bsub_255"):
            sys.stderr.write("Cannot connect to LSF. Please wait ...\n")
            return 255
        silent = take_fault("bsub_empty")
        job_id = _next_id()
        script_path = os.path.join(state_dir(), "jobs", f"{job_id}.sh")
        with open(script_path, "w") as handle:
            handle.write(script if script else shlex.join(command) + "\n")
        now = time.time()
        ended = {"stat": "DONE", "start": now, "finish": now} if settings["instant"] else {}
        job = {
            "id": job_id,
            "name": name or (command[0] if command else "b2box"),
            "description": options.get("-Jd", ""),
            "queue": queue,
            "user": USER,
            "cwd": options.get("-cwd", os.getcwd()),
            "options": options,
            "mem_limit": limit,
            "script": script_path,
            "array": bool(array),
            "submit": now,
            "environment": dict(os.environ) if options.get("-env", "all").split(",")[0].strip() != "none" else {},
            "elements": {
                str(index): {"stat": "PEND", "exit_code": "", "exit_reason": "", "start": None, "finish": None, **ended}
                for index in indices
            },
        }
        save_job(job)
    if not ended:
        _detach_runner(job_id)
    if not silent:
        where = f"queue <{queue}>" if "-q" in options else f"default queue <{queue}>"
        print(f"Job <{job_id}> is submitted to {where}.")
    return 0


def _detach_runner(job_id: int) -> None:
    runner = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "run", str(job_id)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    del runner  # detached: it outlives this command, as an LSF job outlives bsub


def _has_command(arguments: list[str]) -> bool:
    parsed = parse_bsub(arguments, "")
    return not isinstance(parsed, str) and bool(parsed[1])


# ---------------------------------------------------------------------------------------------- running jobs


def _expand(path: str, job_id: int, index: int) -> str:
    return path.replace("%J", str(job_id)).replace("%I", str(index))


def _header(job: dict[str, Any], index: int) -> str:
    label = f"{job['id']}[{index}]" if job["array"] else str(job["id"])
    name = f"{job['name']}[{index}]" if job["array"] else job["name"]
    return (
        f"Sender: LSF System <lsfadmin@{HOST}>\n"
        f"Subject: Job {label}: <{name}> in cluster <standin>\n\n"
        f"Job <{name}> was submitted from host <{HOST}> by user <{job['user']}> in cluster <standin> at "
        f"{time.ctime(job['submit'])}.\n"
        f"Job was executed on host(s) <{HOST}>, in queue <{job['queue']}>, as user <{job['user']}>.\n"
        "------------------------------------------------------------\n\n"
        "The output (if any) follows:\n\n"
    )


def _start(job: dict[str, Any], index: int) -> subprocess.Popen[bytes]:
    options = job["options"]
    environment = {**job["environment"], "LSB_JOBID": str(job["id"]), "LSB_JOBNAME": job["name"]}
    environment["LSB_JOBINDEX"] = str(index)
    out_path = options.get("-oo") or options.get("-o")
    err_path = options.get("-eo") or options.get("-e")
    stdout = subprocess.DEVNULL if out_path is None else None
    if out_path:
        out_path = _expand(out_path, job["id"], index)
        handle = open(out_path, "w" if "-oo" in options else "a")  # noqa: SIM115 - handed to the job
        handle.write(_header(job, index))
        handle.flush()
        stdout = handle
    stderr = stdout
    if err_path:
        stderr = open(_expand(err_path, job["id"], index), "w" if "-eo" in options else "a")  # noqa: SIM115
    return subprocess.Popen(
        ["/bin/bash", job["script"]],
        cwd=job["cwd"],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )


def session_processes(leader: int) -> list[int]:
    """The processes of the job whose first process is ``leader`` (started in a session of its own): its session."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
        except OSError:
            continue
        if len(fields) > 3 and fields[3] == str(leader):
            found.append(int(name))
    return found


def resident_bytes(pids: list[int]) -> int:
    """The resident memory of these processes, summed, as LSF sums a job's processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, ValueError, IndexError):
            continue
    return total


def _signal_job(leader: int, number: int) -> None:
    for pid in session_processes(leader):
        with contextlib.suppress(OSError):
            os.kill(pid, number)


def _watch_memory(
    job: dict[str, Any], running: dict[str, subprocess.Popen[bytes]], used: dict[str, int], interval: float
) -> None:
    """Record each running element's peak memory; one over the job's limit (``-M``) is killed as LSF kills it:
    SIGINT, then SIGTERM, then SIGKILL to all of its processes, ``interval`` seconds apart."""
    now = time.time()
    for index, amount in used.items():
        element = job["elements"].get(index)
        if element is None:
            continue
        element["max_mem"] = max(element.get("max_mem") or 0, amount)
        if job.get("mem_limit") and amount > job["mem_limit"] and not element.get("memlimit_at"):
            element.update(memlimit_at=now, memlimit_signals=0)
    for index, process in running.items():
        element = job["elements"].get(index)
        if element is None or not element.get("memlimit_at"):
            continue
        due = min(len(KILL_SEQUENCE), 1 + int((now - element["memlimit_at"]) / max(interval, 0.01)))
        while element["memlimit_signals"] < due:
            _signal_job(process.pid, KILL_SEQUENCE[element["memlimit_signals"]])
            element["memlimit_signals"] += 1


def _ended(element: dict[str, Any], code: int, leader: int) -> None:
    """How an element ended, as bjobs shows it: a shell's exit code (128 + N for signal N)."""
    shown = code if code >= 0 else 128 - code
    if element.get("kill"):
        element.update(stat="EXIT", exit_code="", exit_reason="TERM_OWNER: job killed by owner")
    elif element.get("memlimit_at"):
        _signal_job(leader, signal.SIGKILL)  # nothing of a job killed for its memory runs on
        element.update(stat="EXIT", exit_code=str(shown) if shown else "", exit_reason=MEMLIMIT_REASON)
    elif code == 0:
        element.update(stat="DONE", exit_code="")
    else:
        element.update(stat="EXIT", exit_code=str(shown))
    element["finish"] = time.time()


def run(job_id: int) -> None:
    """The detached runner of one submission: starts its elements as slots free up, watches their memory, records
    how each ends."""
    running: dict[str, subprocess.Popen[bytes]] = {}
    measured = 0.0
    while True:
        settings = config()
        used: dict[str, int] = {}
        if running and time.monotonic() - measured >= settings["memory_poll"]:  # read outside the lock
            measured = time.monotonic()
            used = {index: resident_bytes(session_processes(process.pid)) for index, process in running.items()}
        with locked():
            job = load_job(job_id)
            if job is None:
                return
            busy = sum(1 for other in all_jobs() for element in other["elements"].values() if element["stat"] == "RUN")
            now = time.time()
            for index, element in job["elements"].items():
                if element.get("kill") and index in running:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(running[index].pid, signal.SIGTERM)
                if element["stat"] == "PEND" and element.get("kill"):
                    element.update(stat="EXIT", exit_code="", exit_reason="TERM_OWNER: job killed by owner", finish=now)
                elif (
                    element["stat"] == "PEND"
                    and now - job["submit"] >= settings["queue_delay"]
                    and busy < settings["slots"]
                ):
                    running[index] = _start(job, int(index))
                    element.update(stat="RUN", start=now)
                    busy += 1
            _watch_memory(job, running, used, settings["job_terminate_interval"])
            for index, process in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[index]
                if index in job["elements"]:
                    _ended(job["elements"][index], code, process.pid)
            save_job(job)
            if all(element["stat"] in FINISHED for element in job["elements"].values()) and not running:
                return
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------------------ bjobs


def _requested(words: list[str]) -> list[tuple[int, int | None]] | None:
    found = []
    for word in words:
        match = re.fullmatch(r"(\d+)(?:\[(\d+)\])?", word)
        if not match:
            return None
        found.append((int(match.group(1)), int(match.group(2)) if match.group(2) else None))
    return found


def _record(job: dict[str, Any], index: str, element: dict[str, Any], stat: str) -> dict[str, str]:
    running = stat != "PEND"
    return {
        "jobid": str(job["id"]),
        "jobindex": index,
        "stat": stat,
        "exit_code": element["exit_code"] if stat == "EXIT" else "",
        "exit_reason": element.get("exit_reason", ""),
        "job_name": f"{job['name']}[{index}]" if job["array"] else job["name"],
        "queue": job["queue"],
        "user": job["user"],
        "pend_reason": "" if running else "Job is waiting for its turn (stand-in)",
        "from_host": HOST,
        "exec_host": HOST if running else "",
        "submit_time": _lsf_time(job["submit"]),
        "start_time": _lsf_time(element["start"]),
        "finish_time": _lsf_time(element["finish"]) + (" L" if element["finish"] else ""),
        "job_description": job.get("description", ""),
        "max_mem": lsf_memory(element.get("max_mem")),
    }


def bjobs(arguments: list[str]) -> int:
    as_json = "-json" in arguments
    show_all = "-a" in arguments
    noheader = "-noheader" in arguments
    fields_spec, name_filter, ids = "", "", []
    position = 0
    while position < len(arguments):
        word = arguments[position]
        if word in ("-o", "-u", "-J") and position + 1 < len(arguments):
            value = arguments[position + 1]
            if word == "-o":
                fields_spec = value
            elif word == "-J":
                name_filter = value
            position += 2
            continue
        if not word.startswith("-"):
            ids.append(word)
        position += 1
    if as_json and not fields_spec:
        sys.stderr.write(
            "bjobs: You cannot use the -json option when the -o option is not specified or the LSB_BJOBS_FORMAT "
            "parameter is not defined.\n"
        )
        return 255
    if as_json and noheader:
        sys.stderr.write("bjobs: The -noheader option cannot be used with the -json option.\n")
        return 255
    requested = _requested(ids)
    if requested is None:
        sys.stderr.write(f"{' '.join(ids)}: Illegal job ID.\n")
        return 255
    delimiter = " "
    match = re.search(r"delimiter='(.)'", fields_spec)
    if match:
        delimiter = match.group(1)
        fields_spec = fields_spec[: match.start()]
    fields = [field.split(":")[0].lower() for field in fields_spec.split()] or ["jobid", "user", "stat", "queue"]
    unknown_fields = [field for field in fields if field not in FIELDS]
    if unknown_fields:
        sys.stderr.write(f"{unknown_fields[0]}: Illegal field.\n")
        return 255
    settings = config()
    with locked():
        now = time.time()
        jobs = {}
        for job in all_jobs():
            elements = len(job["elements"])
            if purge_aged(job, now, settings["clean_period"]):
                os.remove(job_path(job["id"]))
                continue
            if len(job["elements"]) != elements:  # written only when it changed: 1,000 arrays are 1,000 files
                save_job(job)
            jobs[job["id"]] = job
        unkwn = take_fault("unkwn")
        ssusp = take_fault("ssusp")
        broken = take_fault("bjobs_255")
    records: list[dict[str, str]] = []
    errors: list[str] = []
    found_any = False

    def add(job: dict[str, Any], index: str, element: dict[str, Any]) -> None:
        stat = element["stat"]
        if stat == "RUN" and unkwn:
            stat = "UNKWN"
        elif stat == "RUN" and ssusp:
            stat = "SSUSP"
        records.append(_record(job, index, element, stat))

    if requested:
        for job_id, index in requested:
            job = jobs.get(job_id)
            elements = {} if job is None else job["elements"]
            if index is not None:
                elements = {str(index): elements[str(index)]} if str(index) in elements else {}
            if not elements:
                label = f"{job_id}[{index}]" if index is not None else str(job_id)
                errors.append(label)
                continue
            found_any = True
            for key, element in sorted(elements.items(), key=lambda item: int(item[0])):
                add(jobs[job_id], key, element)
    else:
        for job in jobs.values():
            if name_filter and not _name_matches(job["name"], name_filter):
                continue
            for key, element in sorted(job["elements"].items(), key=lambda item: int(item[0])):
                if show_all or element["stat"] not in FINISHED:
                    found_any = True
                    add(job, key, element)
    if as_json:
        listed = [{field.upper(): record[field] for field in fields} for record in records]
        listed += [{"JOBID": label, "ERROR": f"Job <{label}> is not found"} for label in errors]
        text = json.dumps({"COMMAND": "bjobs", "JOBS": len(listed), "RECORDS": listed}, indent=1)
    else:
        lines = [] if noheader else [delimiter.join(field.upper() for field in fields)]
        lines += [delimiter.join(record[field] or "-" for field in fields) for record in records]
        text = "\n".join(lines) if records else ""
        for label in errors:
            sys.stderr.write(f"Job <{label}> is not found\n")
        if not requested and not records:
            print("No unfinished job found" if not show_all else "No job found")
            return 0 if settings["consistent_exit_code"] == "N" else 255
    if broken:
        sys.stdout.write(text[: len(text) // 2])
        sys.stdout.flush()
        return 255
    if text:
        print(text)
    if errors and (found_any or settings["consistent_exit_code"] == "Y"):
        return 255
    return 0


def _name_matches(name: str, pattern: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), name) is not None


# ------------------------------------------------------------------------------------------------------ bkill


def bkill(arguments: list[str]) -> int:
    signalled = "-s" in arguments
    words = [
        word
        for position, word in enumerate(arguments)
        if not word.startswith("-") and (position == 0 or arguments[position - 1] != "-s")
    ]
    requested = _requested(words)
    if requested is None or not requested:
        sys.stderr.write("bkill: Illegal job ID.\n")
        return 255
    status = 0
    settings = config()
    with locked():
        now = time.time()
        for job_id, index in requested:
            job = load_job(job_id)
            if job is not None and purge_aged(job, now, settings["clean_period"]):
                job = None
            label = f"{job_id}[{index}]" if index is not None else str(job_id)
            elements = {} if job is None else job["elements"]
            if index is not None:
                elements = {str(index): elements[str(index)]} if str(index) in elements else {}
            if not elements:
                sys.stderr.write(f"Job <{label}>: No matching job found\n")
                status = 255
                continue
            active = [element for element in elements.values() if element["stat"] not in FINISHED]
            if not active:
                sys.stderr.write(f"Job <{label}>: Job has already finished\n")
                status = 255
                continue
            for element in active:
                element["kill"] = True
            save_job(job)  # type: ignore[arg-type]
            print(f"Job <{label}> is being {'signaled' if signalled else 'terminated'}")
    return status


# ------------------------------------------------------------------------------------------------------- lsid


def lsid(arguments: list[str]) -> int:
    print(f"IBM Spectrum LSF Standard 10.1.0.0 (b2box test stand-in, not LSF), {datetime.date.today():%b %d %Y}")
    print("Copyright International Business Machines Corp. 1992, 2016.")
    print()
    print("My cluster name is standin")
    print(f"My master name is {HOST}")
    return 0


def counted(name: str) -> Any:
    """Each call of a command is written to ``calls.log`` in the state folder, so benchmarks can count them."""

    def call(arguments: list[str]) -> int:
        with open(os.path.join(state_dir(), "calls.log"), "a") as handle:
            handle.write(f"{name}\n")
        return COMMANDS_BY_NAME[name](arguments)

    return call


COMMANDS_BY_NAME = {"bsub": bsub, "bjobs": bjobs, "bkill": bkill, "lsid": lsid}
COMMANDS = {name: counted(name) for name in COMMANDS_BY_NAME}

if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(int(sys.argv[2]))
    else:
        sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
