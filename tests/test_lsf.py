"""The LSF backend against the LSF stand-in (tests/standins/lsf), which really runs the jobs.

LSF cannot be installed here: these tests drive b2box's LSF backend end to end through a stand-in of bsub,
bjobs and bkill that reproduces their documented formats, states and exit codes (see its docstring) and runs each
job with bash. The pure parts are tested on recorded answers; the whole on this machine, and a 100-task workflow in
Apptainer on the testbed's worker node, where the HTCondor and Slurm jobs run too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from b2box.batch.backends import lsf
from b2box.batch.backends.base import JobState
from b2box.batch.waves import Wave
from tests.identity_runs import NAMES as IDENTITY_NAMES
from tests.identity_runs import run as run_identity
from tests.identity_runs import setup as setup_identity
from tests.test_faults import Workflow, wait_gone

STANDIN = Path(__file__).parent / "standins" / "lsf"
# the EXIT_REASON of a job LSF killed for its memory limit (IBM's LSF job exit information; users' job reports)
MEMLIMIT_REASON = "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"


# ------------------------------------------------------------------------------------------------ pure parts


def test_both_bsub_answers_and_noise_before_them() -> None:
    assert lsf.parse_bsub("Job <72065926> is submitted to default queue <s>.\n") == "72065926"
    assert lsf.parse_bsub("Job <984097> is submitted to queue <short>.\n") == "984097"
    assert lsf.parse_bsub("Cannot connect to LSF. Please wait ...\nJob <5> is submitted to queue <q>.") == "5"
    assert lsf.parse_bsub("") is None and lsf.parse_bsub("Job <s> is submitted") is None


RECORDED = {
    "COMMAND": "bjobs",
    "JOBS": 5,
    "RECORDS": [
        {"JOBID": "22005", "JOBINDEX": "1", "STAT": "DONE", "EXIT_CODE": "", "EXIT_REASON": ""},
        {"JOBID": "22005", "JOBINDEX": "2", "STAT": "EXIT", "EXIT_CODE": "3", "EXIT_REASON": ""},
        {"JOBID": "22005", "JOBINDEX": "3", "STAT": "EXIT", "EXIT_CODE": "", "EXIT_REASON": "TERM_OWNER: job killed"},
        {"JOBID": "22006", "JOBINDEX": "0", "STAT": "SSUSP", "EXIT_CODE": ""},
        {"JOBID": "1234", "ERROR": "Job <1234> is not found"},
    ],
}


def test_bjobs_json_states_and_error_records() -> None:
    found = lsf.parse_bjobs(json.dumps(RECORDED))
    assert found["22005[1]"].state is JobState.FINISHED and found["22005[1]"].exit_code is None, "DONE has no code"
    assert found["22005[2]"].exit_code == 3
    assert "TERM_OWNER" in found["22005[3]"].reason
    assert found["22006[0]"].state is JobState.RUNNING and "resumes by itself" in found["22006[0]"].reason
    assert not any(identity.startswith("1234") for identity in found), "an ERROR record is a job LSF forgot"
    with pytest.raises(ValueError):
        lsf.parse_bjobs(json.dumps(RECORDED)[:100])  # bjobs exited 255 half-way


@pytest.mark.parametrize(
    ("stat", "state"),
    [("PEND", "queued"), ("PROV", "queued"), ("WAIT", "queued"), ("PSUSP", "queued"), ("RUN", "running"),
     ("USUSP", "running"), ("SSUSP", "running"), ("UNKWN", "unknown"), ("ZOMBI", "finished"), ("DONE", "finished"),
     ("EXIT", "finished"), ("NEWSTATE", "unknown")],
)  # fmt: skip
def test_every_lsf_state_is_mapped(stat: str, state: str) -> None:
    status = lsf.status_of({"JOBID": "7", "JOBINDEX": "2", "STAT": stat, "EXIT_CODE": ""})
    assert status.state.value == state
    if stat in ("PSUSP", "USUSP", "UNKWN", "NEWSTATE"):
        assert status.reason, "a suspension or an unknown state is told to the user"


# what bjobs -o "... max_mem" -json answers for a job LSF killed for its memory (MAX_MEM in LSF's units, as in
# Roddy's recorded bjobs answers; EXIT_CODE 130: the SIGINT LSF sends first)
KILLED = {"JOBID": "7", "JOBINDEX": "1", "STAT": "EXIT", "EXIT_CODE": "130", "MAX_MEM": "310 Mbytes",
          "EXIT_REASON": MEMLIMIT_REASON}  # fmt: skip


@pytest.mark.parametrize(
    ("shown", "size"),
    [("310 Mbytes", 310 * 2**20), ("5.2 Gbytes", int(5.2 * 2**30)), ("12 Kbytes", 12 * 2**10),
     ("522 MBytes", 522 * 2**20), ("1 Tbytes", 2**40), ("2G", 2 * 2**30), ("-", None), ("", None), (None, None),
     ("310", None), ("lots", None)],
)  # fmt: skip
def test_max_mem_is_read_in_lsfs_units(shown: str | None, size: int | None) -> None:
    assert lsf.parse_memory(shown) == size


def test_what_the_standin_prints_is_read_back() -> None:
    from tests.standins.lsf import lsf_standin

    for size in (12 * 2**10, 310 * 2**20, int(5.2 * 2**30)):
        assert abs((lsf.parse_memory(lsf_standin.lsf_memory(size)) or 0) - size) < 0.05 * size


def test_exit_for_the_memory_limit_is_a_kill_for_memory() -> None:
    status = lsf.status_of(KILLED)
    assert status.state is JobState.FINISHED and status.memory_kill and status.memory_used == 310 * 2**20
    assert status.reason.startswith("TERM_MEMLIMIT") and status.exit_code == 130
    for other in ({"EXIT_REASON": "TERM_OWNER: job killed by owner"}, {"EXIT_REASON": "", "EXIT_CODE": "3"},
                  {"STAT": "DONE", "EXIT_REASON": "", "EXIT_CODE": ""}):  # fmt: skip
        assert not lsf.status_of({**KILLED, **other}).memory_kill, other
    running = lsf.status_of({**KILLED, "STAT": "RUN", "EXIT_REASON": "", "MAX_MEM": "1.5 Gbytes"})
    assert running.state is JobState.RUNNING and running.memory_used == int(1.5 * 2**30) and not running.memory_kill
    assert "max_mem" in lsf.FIELDS.split(), "asked in the same bjobs as the states"


def _batch(**values: Any) -> lsf.LSFSettings:
    return lsf.LSFSettings(**values)


def test_array_script_holds_the_options_as_bsub_lines(tmp_path: Path) -> None:
    wave = Wave(folder=str(tmp_path / "wave dir"), jobs=())
    batch = _batch(queue="short", job_slots=4, lsf_settings={"-R": "rusage[mem=4000]", "-W": "2:00"})
    script = lsf.array_script(wave, 7, batch, job_name='my "job"[x]')
    assert '#BSUB -J "my__job__x_[1-7]"' in script and '#BSUB -q "short"' in script and "#BSUB -n 4" in script
    assert "#BSUB -W 2:00\n" in script, "a value that needs no quotes is written bare, as IBM's examples do"
    assert '#BSUB -R "rusage[mem=4000]"' in script and f'#BSUB -oo "{tmp_path}/wave dir/%I/log/stdout"' in script
    assert "#BSUB -n" not in lsf.array_script(wave, 1, _batch(), job_name="ana"), "no -n unless job_slots is set"
    assert "line break" in lsf.refusal(_batch(lsf_settings={"-P": "belle\n#BSUB -q other"}), job_name="ana")


# -------------------------------------------------------------------------------------- through the stand-in


@pytest.fixture
def standin(tmp_path: Path) -> Path:
    """A fresh stand-in state folder, with short delays."""
    state = tmp_path / "lsf-state"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"queue_delay": 0.1, "slots": 4}))
    return state


def lsf_workflow(folder: Path, state: Path, **settings: Any) -> tuple[Workflow, dict[str, str]]:
    workflow = Workflow(folder, {"batch_system": "lsf", "batch_poll_interval": 0.2, **settings})
    env = workflow.env()
    env.update(PATH=f"{STANDIN / 'bin'}:{env['PATH']}", LSF_STANDIN_DIR=str(state))
    return workflow, env


def arrays(state: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((state / "jobs").glob("*.json"))]


def faults(state: Path, **counts: int) -> None:
    (state / "faults.json").write_text(json.dumps(counts))


def test_workflow_runs_as_one_array_per_wave(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin, queue="short", job_slots=2)
    done = workflow.run("--batch", env={**env, "FAULT_N": "5", "FAULT_WORKERS": "100"})
    assert done.returncode == 0, done.stderr
    submitted = arrays(standin)
    assert [len(array["elements"]) for array in submitted] == [5, 1], "5 steps in one array, then the total"
    assert submitted[0]["queue"] == "short" and submitted[0]["options"]["-n"] == "2"
    record = json.loads((workflow.folder / "logs/index=3/Step/provenance.json").read_text())
    assert record["backend"] == "lsf" and record["job_id"] == f"{submitted[0]['id']}[4]"
    assert workflow.runs_of() == Counter({0: 1, 1: 1, 2: 1, 3: 1, 4: 1})
    assert "The output (if any) follows" in (workflow.folder / "logs/index=3/Step/stdout").read_text()


def test_failing_task_is_retried_then_fails(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin, retries=1)
    done = workflow.run("--batch", env={**env, "FAULT_N": "2", "FAULT_1": "fail"})
    assert done.returncode == 1, done.stderr
    assert "retry 1 of 1" in done.stderr and "step 1 fails on purpose" in done.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 2}) and not workflow.output(1).exists()


def test_interrupt_kills_the_jobs_with_bkill(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin)
    run = workflow.start("--batch", env={**env, "FAULT_N": "1", "FAULT_0": "hang"})
    task = workflow.wait_until_hanging()
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert wait_gone(task), "bkill stopped the job"
    deadline = time.monotonic() + 20  # like LSF, the stand-in may still show RUN for a moment after bkill
    while arrays(standin)[0]["elements"]["1"]["stat"] == "RUN" and time.monotonic() < deadline:
        time.sleep(0.1)
    element = arrays(standin)[0]["elements"]["1"]
    assert element["stat"] == "EXIT" and element["exit_reason"].startswith("TERM_OWNER")
    assert not list(workflow.folder.glob("task_files/index=*/Step/batch_job.json"))


def test_restart_reattaches_without_a_second_submission(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin)
    env = {**env, "FAULT_N": "2", "FAULT_0": "sleep:3"}
    first = workflow.start("--batch", env=env)
    workflow.wait_for_start(0)
    first.kill()
    first.communicate(timeout=30)
    again = workflow.run("--batch", env=env)
    assert again.returncode == 0, again.stderr
    assert "re-attached to 1 job(s)" in again.stderr or "collecting" in again.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1})
    assert sum(len(array["elements"]) for array in arrays(standin)) == 3, "two steps and the total, nothing twice"
    record = json.loads((workflow.folder / "results/index=0/.b2box-identity-step.txt.json").read_text())
    assert record["outputs"] == ["step.txt"], "the job that ended after the restart kept the identity it was sent with"
    assert "0 to run" in workflow.run("--batch", env=env).stderr, "and it is the identity the next run expects"


def test_result_identity_through_lsf(tmp_path: Path, standin: Path) -> None:
    setup_identity(tmp_path, {"batch_system": "lsf", "batch_poll_interval": 0.2, "tasks_per_job": 2})
    env = {"PATH": f"{STANDIN / 'bin'}:{os.environ['PATH']}", "LSF_STANDIN_DIR": str(standin)}
    assert run_identity(tmp_path, "--batch", env=env) == set(IDENTITY_NAMES)
    assert run_identity(tmp_path, "--batch", env=env) == set()
    assert run_identity(tmp_path, "--batch", env={**env, "IDENTITY_FLAVOUR_0": "x"}) == {"Number(0)", "Sum"}


def test_job_that_succeeded_and_aged_out_is_a_success(tmp_path: Path, standin: Path) -> None:
    """LSF forgets a finished job at once (CLEAN_PERIOD 0): b2box, which polls the moment the job writes its exit
    record, finds it gone and judges it by that record."""
    (standin / "config.json").write_text(json.dumps({"queue_delay": 0.1, "clean_period": 0.0}))
    workflow, env = lsf_workflow(tmp_path / "wf", standin, batch_poll_interval=2.0)
    done = workflow.run("--batch", env={**env, "FAULT_N": "1"})
    assert done.returncode == 0, done.stderr
    assert arrays(standin) == [], "LSF forgot every job before b2box asked about it"
    assert workflow.finished(0) == "0"


@pytest.mark.parametrize(
    ("fault", "told"),
    [
        ("bsub_255", "Cannot connect to LSF"),
        ("bsub_empty", "answered without a job id"),
        ("bjobs_255", "bjobs exited with 255"),
        ("unkwn", "lost contact"),
        ("ssusp", "suspended by LSF"),
    ],
)
def test_injected_fault_is_survived(tmp_path: Path, standin: Path, fault: str, told: str) -> None:
    faults(standin, **{fault: 1 if fault.startswith("bsub") else 2})
    workflow, env = lsf_workflow(tmp_path / "wf", standin)
    done = workflow.run("--batch", env={**env, "FAULT_N": "2", "FAULT_0": "sleep:1", "FAULT_1": "sleep:1"})
    assert done.returncode == 0, done.stderr
    assert told in done.stderr
    assert workflow.runs_of() == Counter({0: 1, 1: 1}), "nothing ran twice"
    assert sum(len(array["elements"]) for array in arrays(standin)) == 3, "nothing was submitted twice"


# ------------------------------------------------------------------------------------------------ memory limits

HOG = """import signal, sys, time
if sys.argv[2:] == ["stubborn"]:  # a job that ignores SIGINT and SIGTERM: only LSF's SIGKILL ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
block = bytearray(int(sys.argv[1]) * 2**20)
for position in range(0, len(block), 4096):
    block[position] = 1
time.sleep(1.0)
"""


def bsub_script(state: Path, script: str) -> str:
    """``bsub < script`` on the stand-in; the job id."""
    env = {**os.environ, "LSF_STANDIN_DIR": str(state)}
    done = subprocess.run([str(STANDIN / "bin" / "bsub")], input=script, text=True, capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    found = lsf.parse_bsub(done.stdout)
    assert found is not None, done.stdout
    return found


MEMORY_FIELDS = "jobid stat exit_code exit_reason max_mem"


def megabytes(shown: str) -> int:
    """``310 Mbytes`` (bjobs' MAX_MEM of a job between 1 MB and 1 GB) -> 310."""
    assert re.fullmatch(r"\d+ Mbytes", shown), shown
    return int(shown.split()[0])


def finished(state: Path, job: str, timeout: float = 30) -> dict[str, str]:
    """The job's bjobs -json record once it is DONE or EXIT."""
    env = {**os.environ, "LSF_STANDIN_DIR": str(state)}
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run([str(STANDIN / "bin" / "bjobs"), "-json", "-a", "-o", MEMORY_FIELDS, job],
                              capture_output=True, text=True, env=env)  # fmt: skip
        record = json.loads(done.stdout)["RECORDS"][0]
        if record["STAT"] in ("DONE", "EXIT") or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def test_standin_kills_a_job_over_its_memory_limit_as_lsf_does(tmp_path: Path, standin: Path) -> None:
    """``-M``: the job's processes' resident memory, summed, over the limit: SIGINT, SIGTERM, SIGKILL; EXIT with
    TERM_MEMLIMIT, the exit code the job died with, MAX_MEM in LSF's words."""
    hog = tmp_path / "hog.py"
    hog.write_text(HOG)
    killed = finished(standin, bsub_script(standin, f"#BSUB -M 200MB\npython3 {hog} 300\n"))
    assert killed["STAT"] == "EXIT" and killed["EXIT_REASON"] == MEMLIMIT_REASON
    assert killed["EXIT_CODE"] == "130", "died of the SIGINT LSF sends first (IBM: 'Exited by signal 2')"
    assert megabytes(killed["MAX_MEM"]) > 200, "the sum it was killed at"
    # its Python ignores SIGINT and SIGTERM, its shell dies of the SIGTERM (the 143 users report)
    shell = finished(standin, bsub_script(standin, f"#BSUB -M 204800\npython3 {hog} 300 stubborn\n"))
    assert shell["EXIT_REASON"] == MEMLIMIT_REASON and shell["EXIT_CODE"] == "143", shell
    # nothing of it heeds SIGINT or SIGTERM: LSF's SIGKILL ends it (137)
    stubborn = finished(standin, bsub_script(standin, f"#BSUB -M 200M\ntrap '' INT TERM\npython3 {hog} 300 x\n"))
    assert stubborn["EXIT_REASON"] == MEMLIMIT_REASON and stubborn["EXIT_CODE"] == "137", stubborn
    within = finished(standin, bsub_script(standin, f"#BSUB -M 1GB\npython3 {hog} 50\n"))
    assert within["STAT"] == "DONE" and within["EXIT_REASON"] == "" and 50 < megabytes(within["MAX_MEM"]) < 200


def test_standin_reads_memory_limits_and_prints_memory_like_lsf() -> None:
    from tests.standins.lsf import lsf_standin

    assert lsf_standin.memory_limit("204800") == lsf_standin.memory_limit("204800KB") == 200 * 2**20
    assert lsf_standin.memory_limit("200MB") == lsf_standin.memory_limit("200M") == 200 * 2**20
    assert lsf_standin.memory_limit("2GB!") == lsf_standin.memory_limit("2g") == 2 * 2**30
    assert lsf_standin.memory_limit("lots") is None and lsf_standin.memory_limit("") is None
    assert lsf_standin.lsf_memory(12 * 2**10) == "12 Kbytes" and lsf_standin.lsf_memory(310 * 2**20) == "310 Mbytes"
    assert lsf_standin.lsf_memory(int(5.2 * 2**30)) == "5.2 Gbytes" and lsf_standin.lsf_memory(None) == ""


def test_bad_memory_limit_is_refused_by_bsub(standin: Path) -> None:
    env = {**os.environ, "LSF_STANDIN_DIR": str(standin)}
    done = subprocess.run([str(STANDIN / "bin" / "bsub")], input="#BSUB -M lots\ntrue\n", text=True,
                          capture_output=True, env=env)  # fmt: skip
    assert done.returncode == 255 and done.stderr.strip().endswith("Job not submitted.")


def hungry(folder: Path, state: Path, **settings: Any) -> tuple[Path, dict[str, str]]:
    """tests/workflows/hungry.py (a task touching 300 MB) on the LSF stand-in."""
    folder.mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "workflows" / "hungry.py", folder / "hungry.py")
    (folder / "settings.json").write_text(
        json.dumps({"batch_system": "lsf", "batch_poll_interval": 0.2, "request_memory": "200 MB", **settings})
    )
    return folder / "hungry.py", {"PATH": f"{STANDIN / 'bin'}:{os.environ['PATH']}", "LSF_STANDIN_DIR": str(state)}


def test_a_job_over_its_request_is_killed_for_memory_naming_term_memlimit(tmp_path: Path, standin: Path) -> None:
    from tests.conftest import run_b2box

    script, env = hungry(tmp_path / "wf", standin)
    done = run_b2box("run", str(script), "--batch", cwd=script.parent, env=env)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "killed for memory: used " in said and "requested 200 MB" in said and "TERM_MEMLIMIT" in said, said
    submitted = arrays(standin)
    assert len(submitted) == 1 and "#BSUB -M 204800KB\n" in Path(submitted[0]["script"]).read_text()
    element = submitted[0]["elements"]["1"]
    assert element["stat"] == "EXIT" and element["exit_reason"].startswith("TERM_MEMLIMIT")
    failure = next((script.parent / "logs").glob("**/mb=300/**/failure.log")).read_text()
    assert "killed for memory" in failure and "TERM_MEMLIMIT" in failure
    assert not list(script.parent.glob("**/done.txt"))


def test_with_memory_growth_a_job_killed_for_memory_comes_back_with_more(tmp_path: Path, standin: Path) -> None:
    from tests.conftest import run_b2box

    script, env = hungry(tmp_path / "wf", standin, memory_growth=2)
    done = run_b2box("run", str(script), "--batch", cwd=script.parent, env=env)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "killed for memory" in said and "TERM_MEMLIMIT" in said and "resubmitted with 400 MB" in said, said
    logs = next((script.parent / "logs").glob("**/mb=300/**/Hungry"))
    first = json.loads((logs / "provenance.attempt-1.json").read_text())
    assert (
        first["attempt"] == 1 and first["request_memory_bytes"] == 200 * 2**20 and "TERM_MEMLIMIT" in first["outcome"]
    )
    last = json.loads((logs / "provenance.json").read_text())
    assert last["attempt"] == 2 and last["request_memory_bytes"] == 400 * 2**20 and last["exit_code"] == 0
    assert [array["options"].get("-M") for array in arrays(standin)] == ["204800KB", "409600KB"]
    assert [array["elements"]["1"]["stat"] for array in arrays(standin)] == ["EXIT", "DONE"]


def test_bad_queue_fails_the_tasks_with_lsfs_message(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin, queue="nosuch")
    done = workflow.run("--batch", env={**env, "FAULT_N": "1"})
    assert done.returncode == 1, done.stderr
    assert "nosuch: No such queue. Job not submitted." in done.stderr and arrays(standin) == []


def test_job_slots_false_is_a_settings_error_not_minus_n_false(tmp_path: Path, standin: Path) -> None:
    workflow, env = lsf_workflow(tmp_path / "wf", standin, job_slots="False")
    done = workflow.run("--batch", env={**env, "FAULT_N": "1"})
    assert done.returncode == 2, done.stderr
    assert "job_slots" in done.stderr and arrays(standin) == []


# ---------------------------------------------------------------------------------------- in Apptainer, on the pool


@pytest.mark.apptainer
def test_hundred_tasks_in_apptainer_through_lsf_on_the_worker_node(
    worker: Any, shared_tmp: Path, analysis_sif: str
) -> None:
    """The seed-style workflow (100 numbers, then their total) as LSF jobs in the analysis image."""
    standin = shared_tmp / "lsf"
    shutil.copytree(STANDIN, standin, ignore=shutil.ignore_patterns("__pycache__"))
    state = shared_tmp / "lsf-state"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"queue_delay": 0.1, "slots": 4}))
    shutil.copy(Path(__file__).parent / "workflows" / "pool.py", shared_tmp / "pool.py")
    (shared_tmp / "settings.json").write_text(
        json.dumps({"batch_system": "lsf", "image": analysis_sif, "result_dir": "results", "batch_poll_interval": 0.5})
    )
    for path in (shared_tmp, state):
        os.chmod(path, 0o777)
    python = worker.install_b2box()
    done = worker.run(
        f"cd {shared_tmp} && PATH={standin}/bin:$PATH LSF_STANDIN_DIR={state} POOL_N=100 {python} pool.py --batch",
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((shared_tmp / "results/count=100/total.json").read_text()) == {"total": 4950}
    with open(analysis_sif, "rb") as handle:
        digest = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
    records = [json.loads((shared_tmp / f"logs/index={i}/Item/provenance.json").read_text()) for i in (0, 57, 99)]
    assert all(record["backend"] == "lsf" and record["image"]["digest"] == digest for record in records)
    assert all(record["image"]["runtime"] == "apptainer" for record in records)


def test_auto_picks_lsf_where_bsub_is_and_info_shows_its_version(tmp_path: Path, standin: Path) -> None:
    from tests.conftest import run_b2box

    workflow, env = lsf_workflow(tmp_path / "wf", standin, batch_system="auto")
    done = workflow.run("--batch", env={**env, "FAULT_N": "1"})
    assert done.returncode == 0, done.stderr
    assert arrays(standin), "auto chose LSF: bsub is on PATH"
    assert f"b2box: jobs go to lsf (bsub: {STANDIN / 'bin' / 'bsub'})" in done.stderr, "the run says what auto chose"
    info = run_b2box("info", cwd=tmp_path, env={"PATH": env["PATH"], "LSF_STANDIN_DIR": str(standin)})
    assert "LSF: IBM Spectrum LSF Standard 10.1" in info.stdout
