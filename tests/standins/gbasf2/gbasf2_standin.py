"""A stand-in for the Belle II grid client (gbasf2 and its gb2_* tools) and for the grid it talks to.

gbasf2, DIRAC and the grid cannot be installed here. This is not gbasf2: it reproduces what its tools print and
how they behave, as documented (../../../../shared/notes/lsf-gbasf2.md, part B and C, give each with its source:
the Belle II online book, the 2026 gbasf2 tutorial, DIRAC's job states, b2luigi's code and issues), over a state
folder holding projects, jobs, a storage element and a proxy, and it really runs each grid job: the steering file
with the basf2 stand-in of the requested release (tests/standins/basf2), on its input file, uploading the outputs
with gbasf2 v5's names, ``<stem>_<NNNNN>_job<JobID>_<RR><ext>`` under ``/belle/user/<user>/<project>/subXX/``.

The tools: ``gbasf2`` (submit: name at most 32 characters of ``[A-Za-z0-9_-]``, never reused; one job per input
file; without ``--force`` the project summary and ``Please enter Y or N:``; ``JobID = A ... B (n jobs)``),
``gb2_job_status`` and ``gb2_project_summary`` (the book's tables), ``gb2_job_reschedule`` (Failed, Killed and
Stalled jobs go back to Waiting with RescheduleCounter + 1, the old output staying on the storage element, as
b2luigi#61 found), ``gb2_job_kill``, ``gb2_job_output`` (``log/<project>/<jobid>/{job.info,std.out,
Script1_basf2helper.py.log}``), ``gb2_ds_list``, ``gb2_ds_get`` (into ``./<project>/subXX/``, only the latest
reschedule of each job, skipping files already there, ``--input_dslist``/``--failed_lfns``, ``No file found``),
``gb2_proxy_init`` (``--pwstdin``; a wrong password prints ``Bad passphrase`` and ``Error: Operation not
permitted ( 1 : )`` yet exits 0, as the real one often does; without ``--pwstdin`` and without a terminal it fails
instead of waiting) and ``gb2_proxy_info``. The ``DIRAC`` and ``BelleDIRAC`` packages under python/ answer the
calls b2luigi's JSON helper scripts make, from the same state.

Jobs move Waiting ("Pilot Agent Submission") -> Matched -> Running ("Application") -> Completing -> Done
("Execution Complete", ApplicationStatus Done), or Failed ("Application Finished With Errors") when the steering
file fails. ``faults.json`` in the state folder injects, each a count of the next jobs or calls it affects:
``fail`` (Failed, "Watchdog identified this job as stalled"), ``fail_after_upload`` (the same after the outputs
were uploaded: the reschedule then leaves ``_00`` beside ``_01``), ``app_error`` (Done with ApplicationStatus
``SOMEERROR``), ``stalled``, ``killed``, ``oom`` (the site's batch system kills the job's payload for its memory:
DIRAC has no status for that, so the job ends as any crashed payload does, Failed, "Application Finished With
Errors", ApplicationStatus "'basf2helper.py' Exited With Status 9" -- DIRAC's JobWrapper, Script module and raw
waitpid status for a SIGKILL, read from DIRAC's code, not seen on the grid; ``oom_status`` in config.json, a
[MinorStatus, ApplicationStatus] pair, replaces them, e.g. with a site's words that name memory), ``download_fail``
(files gb2_ds_get fails to fetch, listed in ``--failed_lfns``, exit 0 all the same), ``status_flake`` (a status
query that answers ``Unknown ERROR: proxy has not Belle VOMS extensions``, as b2luigi PR #108 saw).
``config.json`` sets the user, the certificate password, the proxy lifetime in seconds (``proxy_seconds``, to make
one expire in a test), delays, slots and the basf2 stand-in's setup script. An expired proxy makes every tool fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULTS: dict[str, Any] = {
    "user": "tester",
    "password": "standin-password",
    "proxy_seconds": None,  # None: the lifetime asked for (-v HH:MM)
    "delay": 0.2,  # seconds a job spends Waiting and Matched
    "slots": 4,
    "basf2_setup": os.path.join(os.path.dirname(HERE), "basf2", "setup_release.sh"),
    "site": "LCG.KEK.jp",
    "first_job_id": 161844659,
    # what DIRAC says of a payload its site killed for memory (the ``oom`` fault): [MinorStatus, ApplicationStatus]
    "oom_status": ["Application Finished With Errors", "'basf2helper.py' Exited With Status 9"],
}
FINAL = ("Done", "Failed", "Killed", "Stalled", "Deleted", "Completed")
RESCHEDULABLE = ("Failed", "Killed", "Stalled")
JOB_FAULTS = ("fail", "fail_after_upload", "app_error", "stalled", "killed", "oom")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


# ------------------------------------------------------------------------------------------------------ state


def state_dir() -> str:
    folder = os.environ.get("GBASF2_STANDIN_DIR") or os.path.join(HERE, "state")
    for sub in ("projects", "se", "sandboxes", "work"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    return folder


def config() -> dict[str, Any]:
    return {**DEFAULTS, **(_read(os.path.join(state_dir(), "config.json")) or {})}


def _read(path: str) -> Any:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write(path: str, data: Any) -> None:
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(temporary, path)


@contextlib.contextmanager
def locked() -> Iterator[None]:
    with open(os.path.join(state_dir(), "state.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def take_fault(name: str) -> bool:
    """Whether fault ``name`` applies now (each use counts one down); call under the lock."""
    path = os.path.join(state_dir(), "faults.json")
    faults = _read(path) or {}
    if faults.get(name, 0) > 0:
        faults[name] -= 1
        _write(path, faults)
        return True
    return False


def project_path(name: str) -> str:
    return os.path.join(state_dir(), "projects", f"{name}.json")


def load_project(name: str) -> dict[str, Any] | None:
    return _read(project_path(name))


def save_project(project: dict[str, Any]) -> None:
    _write(project_path(project["name"]), project)


def all_projects() -> list[dict[str, Any]]:
    folder = os.path.join(state_dir(), "projects")
    found = [_read(os.path.join(folder, name)) for name in sorted(os.listdir(folder)) if name.endswith(".json")]
    return [project for project in found if project]


def se_path(lfn: str) -> str:
    """Where the storage element keeps an LFN."""
    return os.path.join(state_dir(), "se", lfn.lstrip("/"))


def now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def user() -> str:
    return str(config()["user"])


def user_lpn(project: str) -> str:
    return f"/belle/user/{user()}/{project}"


# ------------------------------------------------------------------------------------------------------ proxy


def proxy() -> dict[str, Any] | None:
    return _read(os.path.join(state_dir(), "proxy.json"))


def seconds_left() -> int:
    found = proxy()
    return max(0, int(found["expires"] - time.time())) if found else 0


def require_proxy() -> None:
    """Every tool but the proxy ones needs a live proxy."""
    if seconds_left() <= 0:
        sys.stderr.write("ERROR: No valid proxy found (expired or missing). Run gb2_proxy_init -g belle first.\n")
        sys.exit(1)


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def proxy_block() -> str:
    found = proxy() or {}
    return "\n".join(
        [
            f"subject      : /C=JP/O=KEK/OU=CRC/CN={user()}/CN=proxy",
            f"issuer       : /C=JP/O=KEK/OU=CRC/CN={user()}",
            f"identity     : /C=JP/O=KEK/OU=CRC/CN={user()}",
            f"timeleft     : {_hms(seconds_left())}",
            f"DIRAC group  : {found.get('group', 'belle')}",
            "path         : /tmp/x509up_standin",
            f"username     : {user()}",
            "properties   : NormalUser",
        ]
    )


def gb2_proxy_init(arguments: list[str]) -> int:
    group = _option(arguments, "-g", "belle")
    lifetime = _option(arguments, "-v", "24:00")
    print("Generating proxy...")
    if "--pwstdin" in arguments:
        password = sys.stdin.readline().rstrip("\n")
    else:
        try:
            with open("/dev/tty") as terminal:
                sys.stdout.write("Enter Certificate password:")
                sys.stdout.flush()
                password = terminal.readline().rstrip("\n")
        except OSError:
            print("Error: Inappropriate ioctl for device: no terminal to ask for the certificate password")
            return 1
    if password != config()["password"]:
        print("Enter Certificate password:Bad passphrase")
        print("Error: Operation not permitted ( 1 : )")
        return 0  # as the real tool often does
    hours, _, minutes = lifetime.partition(":")
    seconds = config()["proxy_seconds"] or int(hours) * 3600 + int(minutes or 0) * 60
    _write(os.path.join(state_dir(), "proxy.json"), {"expires": time.time() + seconds, "group": group})
    print("Proxy generated:")
    print(proxy_block())
    print("Succeed with return value:\n0")
    return 0


def gb2_proxy_info(arguments: list[str]) -> int:
    if seconds_left() <= 0:
        print("Error: No valid proxy found")
        return 1
    print(proxy_block())
    return 0


# ------------------------------------------------------------------------------------------------- datasets


def _listing(pattern: str) -> list[str]:
    """LFNs of files matching ``pattern`` (``*`` and ``sub*`` wildcards) on the storage element."""
    if not pattern.startswith("/"):
        pattern = f"{user_lpn(pattern)}/sub*/*" if "/" not in pattern else f"/belle/user/{user()}/{pattern}"
    root = os.path.join(state_dir(), "se")
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            lfn = "/" + os.path.relpath(os.path.join(folder, name), root)
            if fnmatch.fnmatchcase(lfn, pattern) or lfn.startswith(pattern.rstrip("/") + "/"):
                found.append(lfn)
    return sorted(found)


def latest_reschedules(lfns: list[str]) -> list[str]:
    """Keep only the newest ``_RR`` of each ``<stem>_<NNNNN>_job<ID>`` (what gb2_ds_get fetches)."""
    newest: dict[str, str] = {}
    for lfn in lfns:
        match = re.match(r"(.*_job\d+)_(\d+)(\..*)$", lfn)
        key = match.group(1) + match.group(3) if match else lfn
        if key not in newest or lfn > newest[key]:
            newest[key] = lfn
    return sorted(newest.values())


def gb2_ds_list(arguments: list[str]) -> int:
    require_proxy()
    query = next((word for word in arguments if not word.startswith("-") and word != _option(arguments, "--user")), "")
    if not query:
        print("Usage: gb2_ds_list <dataset or project> [--user USER]")
        return 1
    if "*" not in query and "/" not in query:  # a project: its data blocks
        blocks = sorted({os.path.dirname(lfn) for lfn in _listing(query)})
        print("\n".join(blocks))
        return 0
    print("\n".join(_listing(query)))
    return 0


def gb2_ds_get(arguments: list[str]) -> int:
    require_proxy()
    failed_file = _option(arguments, "--failed_lfns")
    dslist = _option(arguments, "--input_dslist")
    values = {_option(arguments, option) for option in ("--failed_lfns", "--input_dslist")}
    query = next((word for word in arguments if not word.startswith("-") and word not in values), "")
    lfns = latest_reschedules(_listing(query))
    if dslist:
        with open(dslist) as handle:
            wanted = {line.strip() for line in handle if line.strip()}
        lfns = [lfn for lfn in lfns if lfn in wanted]
    if not lfns:
        print("No file found")
        return 0
    print(f"Download {len(lfns)} files from SE")
    done, failed = [], []
    for lfn in lfns:
        parts = lfn.split("/")
        project, block = parts[-3], parts[-2]
        target_dir = os.path.join(os.getcwd(), project, block)
        target = os.path.join(target_dir, parts[-1])
        print(f"Trying to download davs://standin-se.belle{lfn} to {target}")
        with locked():
            broken = take_fault("download_fail")
        if broken:
            failed.append(lfn)
            continue
        if not os.path.exists(target):
            os.makedirs(target_dir, exist_ok=True)
            shutil.copyfile(se_path(lfn), target + ".part")
            os.replace(target + ".part", target)
        done.append((lfn, target_dir))
    print("\nSuccessfully downloaded files:")
    for lfn, folder in done:
        print(f"{lfn} in {folder}")
    print("\n\nFailed files:")
    for lfn in failed:
        print(lfn)
    if failed_file:
        with open(failed_file, "w") as handle:
            handle.writelines(f"{lfn}\n" for lfn in failed)
    return 0  # also with failed files (b2luigi never checks it; not verified on the real grid)


# ------------------------------------------------------------------------------------------------- submission


def _option(arguments: list[str], name: str, default: str = "") -> str:
    for position, word in enumerate(arguments):
        if word == name and position + 1 < len(arguments):
            return arguments[position + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return default


def _options(arguments: list[str], name: str) -> list[str]:
    """All words after ``name`` up to the next option."""
    if name not in arguments:
        return []
    values = []
    for word in arguments[arguments.index(name) + 1 :]:
        if word.startswith("-"):
            break
        values.append(word)
    return values


def _inputs(arguments: list[str]) -> list[str] | str:
    if "-i" in arguments:
        lpns = [item for word in _options(arguments, "-i") for item in word.split(",") if item]
    elif "--input_dslist" in arguments:
        path = _option(arguments, "--input_dslist")
        if not os.path.isfile(path):
            return f"--input_dslist {path}: no such file"
        with open(path) as handle:
            lpns = [line.strip() for line in handle if line.strip()]
    else:
        return "one of -i or --input_dslist is required"
    files: list[str] = []
    for lpn in lpns:
        found = _listing(lpn.rstrip("/")) if not os.path.isfile(se_path(lpn)) else [lpn]
        if not found:
            return f"No file found for the dataset {lpn}"
        files += found
    return files


def gbasf2(arguments: list[str]) -> int:
    require_proxy()
    steering = next((word for word in arguments if word.endswith(".py") and not word.startswith("-")), "")
    name = _option(arguments, "-p")
    release = _option(arguments, "-s")
    if not steering or not name or not release:
        print("ERROR: usage: gbasf2 <steering file> -p <project> -s <release> (-i <LPN> | --input_dslist <file>)")
        return 1
    if not NAME.match(name):
        print(f"ERROR: Project name '{name}' is invalid: at most 32 characters of letters, digits, '_' and '-'.")
        return 1
    if load_project(name) is not None:
        print(f"ERROR: Project {name} already exists. A project name can never be reused; choose another one.")
        return 1
    sandbox_files = [steering, *_options(arguments, "-f")]
    missing = [path for path in sandbox_files if not os.path.isfile(path)]
    if missing:
        print(f"ERROR: input sandbox file(s) not found: {', '.join(missing)}")
        return 1
    priority = _option(arguments, "--priority")
    if priority and not (priority.isdigit() and 0 <= int(priority) <= 10):
        print("ERROR: --priority must be an integer from 0 to 10")
        return 1
    inputs = _inputs(arguments)
    if isinstance(inputs, str):
        print(f"ERROR: {inputs}")
        return 1
    print("************************************************")
    print("*************** Project summary ****************")
    print(f"** Project name: {name}")
    print(f"** Dataset path: {user_lpn(name)}")
    print(f"** Steering file: {os.path.abspath(steering)}")
    print(f"** Job owner: {user()} @ belle ({time.strftime('%H:%M:%S')})")
    print("** Preferred site / SE: None / None")
    print(f"** Input files for first job: LFN:{inputs[0]}")
    print(f"** Number of input files: {len(inputs)}")
    print(f"** Number of jobs: {len(inputs)}")
    print("************************************************")
    if "--force" not in arguments:
        print("Are you sure to submit the project?")
        print("Please enter Y or N: ", end="", flush=True)
        answer = sys.stdin.readline().strip()
        if answer.upper() != "Y":
            print("Submission cancelled.")
            return 1
    sandbox = os.path.join(state_dir(), "sandboxes", name)
    os.makedirs(sandbox)
    for path in sandbox_files:
        shutil.copy(path, os.path.join(sandbox, os.path.basename(path)))
    with locked():
        counter_path = os.path.join(state_dir(), "next_job_id")
        first = int(_read(counter_path) or config()["first_job_id"])
        _write(counter_path, first + len(inputs))
        jobs = {}
        for index, lfn in enumerate(inputs):
            jobs[str(first + index)] = {
                "input": lfn,
                "index": index,
                "Status": "Waiting",
                "MinorStatus": "Pilot Agent Submission",
                "ApplicationStatus": "Unknown",
                "Site": "ANY",
                "RescheduleCounter": 0,
                "SubmissionTime": now_text(),
                "LastUpdateTime": now_text(),
                "HeartBeatTime": now_text(),
                "since": time.time(),
            }
        save_project(
            {
                "name": name,
                "owner": user(),
                "release": release,
                "steering": os.path.basename(steering),
                "basf2opt": _option(arguments, "--basf2opt"),
                "submitted": now_text(),
                "jobs": jobs,
                "runner": 0,
            }
        )
    start_runner(name)
    print(f"JobID = {first} ... {first + len(inputs) - 1} ({len(inputs)} jobs)")
    return 0


def start_runner(name: str) -> None:
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "run", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "GBASF2_STANDIN_DIR": state_dir()},
    )
    with locked():
        project = load_project(name)
        if project is not None:
            project["runner"] = process.pid
            save_project(project)


# ---------------------------------------------------------------------------------------------- running jobs


def _set(job: dict[str, Any], status: str, minor: str, application: str | None = None) -> None:
    job.update(Status=status, MinorStatus=minor, LastUpdateTime=now_text(), HeartBeatTime=now_text(), since=time.time())
    if application is not None:
        job["ApplicationStatus"] = application


def _output_lfn(project: dict[str, Any], job_id: str, job: dict[str, Any], file_name: str) -> str:
    stem, dot, extension = file_name.partition(".")
    number = job["index"]
    return (
        f"{user_lpn(project['name'])}/sub{number // 1000:02d}/"
        f"{stem}_{number:05d}_job{job_id}_{job['RescheduleCounter']:02d}{dot}{extension}"
    )


def _execute(project: dict[str, Any], job_id: str, job: dict[str, Any]) -> tuple[str, str, str, list[str]]:
    """Run one job's steering file on its input; (status, minor status, application status, output LFNs)."""
    work = os.path.join(state_dir(), "work", f"{job_id}_{job['RescheduleCounter']:02d}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for name in os.listdir(os.path.join(state_dir(), "sandboxes", project["name"])):
        shutil.copy(os.path.join(state_dir(), "sandboxes", project["name"], name), work)
    input_name = os.path.basename(job["input"])
    shutil.copy(se_path(job["input"]), os.path.join(work, input_name))
    setup = config()["basf2_setup"]
    command = f"source {_q(setup)} && basf2 {_q(project['steering'])} -i {_q(input_name)} {project['basf2opt']}"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": work,
        "STANDIN_RELEASE": project["release"],
        "DIRACSITE": config()["site"],
        "DIRACJOBID": job_id,
        "DIRAC_JOB_RESCHEDULE": str(job["RescheduleCounter"]),
    }
    with (
        open(os.path.join(work, "std.out"), "w") as out,
        open(os.path.join(work, "Script1_basf2helper.py.log"), "w") as log,
    ):
        done = subprocess.run(["bash", "-c", command], cwd=work, env=environment, stdout=out, stderr=log)
    with open(os.path.join(work, "job.info"), "w") as handle:
        handle.write(f"JobID: {job_id}\nSite: {config()['site']}\nRelease: {project['release']}\n")
    if done.returncode != 0:
        return "Failed", "Application Finished With Errors", f"Failed (exit code {done.returncode})", []
    uploaded = []
    for name in sorted(os.listdir(work)):
        if name.endswith(".root") and name != input_name:
            lfn = _output_lfn(project, job_id, job, name)
            os.makedirs(os.path.dirname(se_path(lfn)), exist_ok=True)
            shutil.copyfile(os.path.join(work, name), se_path(lfn))
            uploaded.append(lfn)
    return "Done", "Execution Complete", "Done", uploaded


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def run(name: str) -> None:
    """A project's runner: moves its jobs through the DIRAC states and runs them, until none is left to run."""
    while True:
        settings = config()
        chosen = None
        with locked():
            project = load_project(name)
            if project is None:
                return
            now = time.time()
            busy = sum(1 for other in all_projects() for job in other["jobs"].values() if job["Status"] == "Running")
            for job_id, job in project["jobs"].items():
                age = now - job["since"]
                if job["Status"] == "Waiting" and age >= settings["delay"]:
                    _set(job, "Matched", "Assigned", "Unknown")
                    job["Site"] = settings["site"]
                elif job["Status"] == "Matched" and age >= settings["delay"] and busy < settings["slots"]:
                    _set(job, "Running", "Application", "Running")
                    chosen = job_id
                    break
            save_project(project)
            if chosen is None and all(job["Status"] in FINAL for job in project["jobs"].values()):
                return
        if chosen is None:
            time.sleep(0.05)
            continue
        job = project["jobs"][chosen]
        with locked():
            fault = next((kind for kind in JOB_FAULTS if take_fault(kind)), "")
        if fault in ("fail", "stalled", "killed", "oom"):
            result = {
                "fail": ("Failed", "Watchdog identified this job as stalled", "Executing RunScriptStep1"),
                "stalled": ("Stalled", "Job stalled: pilot not running", "Executing RunScriptStep1"),
                "killed": ("Killed", "Marked for termination", "Unknown"),
                "oom": ("Failed", *config()["oom_status"]),
            }[fault]
            outcome = (*result, [])
        else:
            outcome = _execute(project, chosen, job)
            if fault == "fail_after_upload" and outcome[0] == "Done":
                outcome = ("Failed", "Watchdog identified this job as stalled", "Executing RunScriptStep1", outcome[3])
            elif fault == "app_error" and outcome[0] == "Done":
                outcome = ("Done", "Execution Complete", "SOMEERROR", outcome[3])
        with locked():
            project = load_project(name)
            if project is None:
                return
            current = project["jobs"][chosen]
            if current["Status"] == "Running":  # not killed meanwhile
                _set(current, "Completing", "Uploading Output Data")
                _set(current, outcome[0], outcome[1], outcome[2])
            save_project(project)


# ----------------------------------------------------------------------------------------------- job tools


def _selected(arguments: list[str]) -> tuple[list[tuple[dict[str, Any], str]], str]:
    """(project, job id) pairs chosen by -p PROJECT or -j/--jobid ids, and the error if none."""
    name = _option(arguments, "-p")
    ids = [item for word in (_options(arguments, "-j") + _options(arguments, "--jobid")) for item in word.split(",")]
    chosen = []
    for project in all_projects():
        if name and project["name"] != name:
            continue
        for job_id in project["jobs"]:
            if not ids or job_id in ids:
                chosen.append((project, job_id))
    if not name and not ids:
        return [], "give a project (-p) or job ids (-j)"
    return chosen, ""


def gb2_job_status(arguments: list[str]) -> int:
    require_proxy()
    with locked():
        flaky = take_fault("status_flake")
    if flaky:
        print("Unknown ERROR: proxy has not Belle VOMS extensions")
        return 1
    chosen, _ = _selected(arguments)
    print(f"{len(chosen)} jobs are selected.")
    if not chosen:
        return 0
    print("\n Job id     Status         MinorStatus        ApplicationStatus      Site")
    print("=" * 77)
    counts = dict.fromkeys(("Completed", "Deleted", "Done", "Failed", "Killed", "Running", "Stalled", "Waiting"), 0)
    for project, job_id in chosen:
        job = project["jobs"][job_id]
        print(f"{job_id}   {job['Status']:<9} {job['MinorStatus']:<23} {job['ApplicationStatus']:<19} {job['Site']}")
        counts[job["Status"] if job["Status"] in counts else "Waiting"] += 1
    print("--- Summary of Selected Jobs ---")
    print("  ".join(f"{state}:{count}" for state, count in counts.items()))
    return 0


def gb2_project_summary(arguments: list[str]) -> int:
    require_proxy()
    name = _option(arguments, "-p")
    print("       Project               Owner     Status    Done   Fail   Run   Wait   Submission Time(UTC)   Duration")
    print("=" * 110)
    for project in all_projects():
        if name and project["name"] != name:
            continue
        states = [job["Status"] for job in project["jobs"].values()]
        done, fail = states.count("Done"), sum(states.count(s) for s in ("Failed", "Killed", "Stalled"))
        run_count, wait = states.count("Running"), sum(states.count(s) for s in ("Waiting", "Matched"))
        overall = "Done" if done == len(states) else ("Running" if run_count or wait else "Failed")
        print(
            f"{project['name']}   {project['owner']}   {overall}   {done}      {fail}      {run_count}     {wait}      "
            f"{project['submitted']}    00:00:00"
        )
    return 0


def gb2_job_reschedule(arguments: list[str]) -> int:
    require_proxy()
    chosen, problem = _selected(arguments)
    if problem:
        print(f"ERROR: {problem}")
        return 1
    restarted = set()
    with locked():
        for project, job_id in chosen:
            fresh = load_project(project["name"])
            job = fresh["jobs"][job_id]  # type: ignore[index]
            if job["Status"] in RESCHEDULABLE:
                job["RescheduleCounter"] += 1
                _set(job, "Waiting", "Pilot Agent Submission", "Unknown")
                job["Site"] = "ANY"
                print(f"Job {job_id} is rescheduled")
                restarted.add(project["name"])
            else:
                print(f"Job {job_id} is not rescheduled: status {job['Status']}")
            save_project(fresh)  # type: ignore[arg-type]
    for name in restarted:
        start_runner(name)
    return 0


def gb2_job_kill(arguments: list[str]) -> int:
    require_proxy()
    chosen, problem = _selected(arguments)
    if problem:
        print(f"ERROR: {problem}")
        return 1
    killed = 0
    with locked():
        for project, job_id in chosen:
            fresh = load_project(project["name"])
            job = fresh["jobs"][job_id]  # type: ignore[index]
            if job["Status"] not in FINAL:
                _set(job, "Killed", "Marked for termination")
                killed += 1
            save_project(fresh)  # type: ignore[arg-type]
    print(f"{killed} jobs are killed")
    return 0


def gb2_job_output(arguments: list[str]) -> int:
    require_proxy()
    chosen, problem = _selected(arguments)
    if problem:
        print(f"ERROR: {problem}")
        return 1
    by_job = "-j" in arguments or "--jobid" in arguments
    print("download output sandbox below ./log/" + ("JOBID" if by_job else "PROJECT/JOBID"))
    print(f"{len(chosen)} jobs are selected.")
    print("Please wait...")
    for project, job_id in chosen:
        job = project["jobs"][job_id]
        work = os.path.join(state_dir(), "work", f"{job_id}_{job['RescheduleCounter']:02d}")
        target = os.path.join(os.getcwd(), "log", *(() if by_job else (project["name"],)), job_id)
        os.makedirs(target, exist_ok=True)
        for name in ("job.info", "std.out", "Script1_basf2helper.py.log"):
            if os.path.isfile(os.path.join(work, name)):
                shutil.copy(os.path.join(work, name), target)
        print(f"                           Result for jobs: ['{job_id}']")
        print("=" * 85)
        print(f'Downloaded: "Job output sandbox retrieved in {target}"')
    return 0


COMMANDS = {
    "gbasf2": gbasf2,
    "gb2_job_status": gb2_job_status,
    "gb2_project_summary": gb2_project_summary,
    "gb2_job_reschedule": gb2_job_reschedule,
    "gb2_job_kill": gb2_job_kill,
    "gb2_job_output": gb2_job_output,
    "gb2_ds_list": gb2_ds_list,
    "gb2_ds_get": gb2_ds_get,
    "gb2_proxy_init": gb2_proxy_init,
    "gb2_proxy_info": gb2_proxy_info,
}


def count_call(name: str) -> None:
    """Every call is written to ``calls.log`` in the state folder, so tests and benchmarks can count them."""
    with open(os.path.join(state_dir(), "calls.log"), "a") as handle:
        handle.write(f"{name}\n")


def main(name: str, arguments: list[str]) -> int:
    count_call(name)
    return COMMANDS[name](arguments)


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run(sys.argv[2])
    else:
        sys.exit(main(sys.argv[1], sys.argv[2:]))
