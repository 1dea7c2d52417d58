"""The gbasf2 backend against the gbasf2 stand-in (tests/standins/gbasf2), whose grid really runs the jobs.

gbasf2, DIRAC and basf2 cannot be installed here: the stand-in reproduces gbasf2's documented tools, states and
outputs (see its docstring) and runs each grid job's steering file with the basf2 stand-in. These tests drive
b2box's gbasf2 backend through it end to end, with the faults b2luigi's users meet.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from b2box.batch.backends.gbasf2 import projects
from b2box.batch.backends.gbasf2.settings import GridSettings

STANDINS = Path(__file__).parent / "standins"
WORKFLOW = Path(__file__).parent / "workflows" / "grid_chain.py"
RELEASE = "release-08-01-00"


class Grid:
    """A stand-in grid of its own (copied into the test's folder, so its setup script names its state)."""

    def __init__(self, folder: Path, proxy: bool = True, **config: Any) -> None:
        self.home = folder / "grid"
        shutil.copytree(STANDINS / "gbasf2", self.home, ignore=shutil.ignore_patterns("__pycache__", "state"))
        self.state = self.home / "state"
        self.state.mkdir()
        base = {"basf2_setup": str(STANDINS / "basf2" / "setup_release.sh"), "delay": 0.1}
        (self.state / "config.json").write_text(json.dumps({**base, **config}))
        for dataset in ("A", "B"):
            self.add_dataset(f"/belle/MC/{dataset}", [10, 20, 30])
        if proxy:
            (self.state / "proxy.json").write_text(json.dumps({"expires": time.time() + 86400, "group": "belle"}))

    def add_dataset(self, lpn: str, events: list[int]) -> None:
        """A dataset on the grid's storage element: one stand-in mdst file per entry of ``events``."""
        block = self.state / "se" / lpn.lstrip("/") / "sub00"
        block.mkdir(parents=True)
        for index, count in enumerate(events, start=1):
            (block / f"mdst_{index:06d}_prod1.root").write_text(json.dumps({"standin_root": 1, "events": count}))

    @property
    def setup(self) -> Path:
        return self.home / "bashrc"

    def faults(self, **counts: int) -> None:
        (self.state / "faults.json").write_text(json.dumps(counts))

    def calls(self) -> Counter[str]:
        path = self.state / "calls.log"
        return Counter(path.read_text().split()) if path.exists() else Counter()

    def projects(self) -> dict[str, Any]:
        return {path.stem: json.loads(path.read_text()) for path in (self.state / "projects").glob("*.json")}


class GridWorkflow:
    def __init__(self, folder: Path, grid: Grid, **settings: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.release = RELEASE  # the basf2 release set up where the workflow runs
        self.script = folder / "grid_chain.py"
        shutil.copy(WORKFLOW, self.script)
        base = {
            "result_dir": "results",
            "batch_system": "gbasf2",
            "gbasf2_setup_path": str(grid.setup),
            "gbasf2_project_name_prefix": "b2boxt",
            "gbasf2_status_interval": 0.3,
            "batch_poll_interval": 0.1,
            "env_script": str(STANDINS / "basf2" / "setup_release.sh"),
        }
        (folder / "settings.json").write_text(json.dumps({**base, **settings}))

    def env(self, datasets: str = "A,B") -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
        env.update(BELLE2_RELEASE=self.release, STANDIN_RELEASE=self.release, GRID_DATASETS=datasets)
        # the basf2 stand-in first, then the caller's path (a worktree's b2box over the installed one)
        paths = [str(STANDINS / "basf2" / "python"), env.get("PYTHONPATH", "")]
        env.update(PYTHONPATH=os.pathsep.join(path for path in paths if path))
        return env

    def run(self, *args: str, datasets: str = "A,B", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(self.script), "--batch", *args], cwd=self.folder,
                              env=self.env(datasets), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    def start(self, datasets: str = "A,B") -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(self.script), "--batch"], cwd=self.folder, env=self.env(datasets),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)  # fmt: skip

    def dataset(self, name: str) -> Path:
        return self.folder / f"results/dataset={name}/ntuple.root"

    def merged(self) -> dict[str, Any]:
        return json.loads((self.folder / "results/ntuple.root").read_text())


@pytest.fixture
def grid(tmp_path: Path) -> Grid:
    return Grid(tmp_path)


# ------------------------------------------------------------------------------------------------ pure parts


def _grid(**values: Any) -> GridSettings:
    base = dict(setup_path="/x/bashrc", release="", project_name_prefix="ana", project_name_hash_length=10,
                input_dataset=("/belle/MC/A",), input_dslist="", input_datafiles=(), repetitions=None, max_retries=0,
                download_dataset=True, download_logs=True, additional_files=(), custom_steering_file="", cputime=None,
                evtpersec=None, priority=None, jobtype="", basf2opt="", input_grouping="", lfn_sandboxfiles=False,
                noscout=False, force_submission=True, additional_params="", additional_download_params="--new",
                proxy_lifetime=24, min_proxy_lifetime=0, proxy_group="belle", project_lpn_path="",
                print_status_updates=True, status_interval=1.0, max_event=0)  # fmt: skip
    return GridSettings(**{**base, **values})


def test_project_names_are_b2luigis_and_checked_before_submission() -> None:
    assert (
        projects.project_name("Task_x_123", _grid())
        == "ana" + __import__("hashlib").md5(b"Task_x_123").hexdigest()[:10]
    )
    with pytest.raises(projects.GridSetupError, match="has 33 characters; gbasf2 allows 32"):
        projects.project_name("T", _grid(project_name_prefix="a" * 23))
    with pytest.raises(projects.GridSetupError, match="letters, digits"):
        projects.project_name("T", _grid(project_name_prefix="bad name"))


def test_newest_reschedule_of_each_job_is_the_dataset() -> None:
    lfns = ["/u/p/sub00/n_00000_job7_00.root", "/u/p/sub00/n_00000_job7_01.root", "/u/p/sub01/n_01000_job9_00.root"]
    assert projects.unique_lfns(lfns) == {"/u/p/sub00/n_00000_job7_01.root", "/u/p/sub01/n_01000_job9_00.root"}


def test_every_dirac_state_is_judged() -> None:
    jobs = {
        "1": {"Status": "Done", "ApplicationStatus": "Done"},
        "2": {"Status": "Done", "ApplicationStatus": "SOMEERROR"},
        "3": {"Status": "Failed"},
        "4": {"Status": "Stalled"},
        "5": {"Status": "Killed"},
        "6": {"Status": "Deleted"},
        "7": {"Status": "Completed"},
        "8": {"Status": "Running"},
        "9": {"Status": "Teleported"},
    }
    state = projects.project_state(jobs)
    assert state.done == ["1"] and state.retryable == ["3", "4", "5"]
    assert set(state.final_failures) == {"2", "6"} and state.unknown == {"9": "Teleported"}
    assert set(state.under_way) == {"7", "8", "9"} and not state.complete


# What DIRAC says of failures (its JobMinorStatus, and the Script step's ApplicationStatus): none names memory.
DIRAC_FAILURES = ["Watchdog identified this job as stalled", "Application Finished With Errors",
                  "Job stalled: pilot not running", "Marked for termination",
                  "Job has reached the CPU limit of the queue", "Job has exceeded maximum wall clock time",
                  "Job has insufficient disk space to continue", "Executing RunScriptStep1",
                  "'basf2helper.py' Exited With Status 9"]  # fmt: skip


def test_only_a_status_that_says_memory_is_a_kill_for_memory() -> None:
    for said in DIRAC_FAILURES:
        job = {"Status": "Failed", "MinorStatus": said, "ApplicationStatus": said}
        assert not projects.killed_for_memory(job), said
    for said in ("Job exceeded memory limit", "Job has exceeded maximum memory limit", "Out of memory",
                 "payload OOM-killed", "TERM_MEMLIMIT: job killed after reaching LSF memory usage limit"):  # fmt: skip
        assert projects.killed_for_memory({"Status": "Failed", "ApplicationStatus": said}), said
    assert not projects.killed_for_memory({"Status": "Failed", "MinorStatus": "Memory"}), "a word is not a verdict"


def test_submit_command_has_b2luigis_options() -> None:
    command = projects.submit_command("p", RELEASE, _grid(priority=5, cputime=30, basf2opt="-n 10"), ["x.pkl"])
    assert command[:6] == ["gbasf2", "steering_file_wrapper.py", "-p", "p", "-s", RELEASE]
    assert "--force" in command and command[command.index("--priority") :][:2] == ["--priority", "5"]
    assert "--basf2opt=-n 10" in command and command[command.index("-i") :][:2] == ["-i", "/belle/MC/A"]
    with pytest.raises(projects.GridSetupError, match="gbasf2_input_dataset"):
        projects.submit_command("p", RELEASE, _grid(input_dataset=()), [])


# -------------------------------------------------------------------------------------- through the stand-in


def test_projects_run_reschedule_download_and_feed_a_local_merge(tmp_path: Path, grid: Grid) -> None:
    grid.faults(fail_after_upload=1)  # its _00 output stays on the storage element beside the new _01
    workflow = GridWorkflow(tmp_path / "wf", grid, gbasf2_max_retries=1)
    done = workflow.run()
    assert done.returncode == 0, done.stderr
    assert "rescheduled 1 failed job(s)" in done.stderr
    assert grid.calls()["gbasf2"] == 2, "one project per task"
    files = sorted(path.name for path in workflow.dataset("A").iterdir())
    assert len(files) == 3 and any(name.endswith("_01.root") for name in files), "the newest reschedule, no duplicate"
    assert workflow.merged()["events"] == 120, "the merge ran here on both downloaded datasets"
    record = json.loads((tmp_path / "wf/logs/dataset=A/Analysis/provenance.json").read_text())
    assert record["backend"] == "gbasf2" and record["release"] == RELEASE and record["gbasf2_version"] == "v5r9"
    assert {job["release"] for job in record["jobs"]} == {RELEASE} and all(job["site"] for job in record["jobs"])
    assert sorted(job["reschedules"] for job in record["jobs"]) == [0, 0, 1]
    assert (tmp_path / "wf/logs/dataset=A/Analysis/gbasf2_logs").is_dir()


def test_a_grid_result_is_identified_by_its_release_and_a_new_release_remakes_it(tmp_path: Path, grid: Grid) -> None:
    """On the grid the site chooses the container: the release is the environment a dataset was made in."""
    workflow = GridWorkflow(tmp_path / "wf", grid)
    assert workflow.run(datasets="A").returncode == 0
    record = json.loads((workflow.folder / "results/dataset=A/.b2box-identity-ntuple.root.json").read_text())
    assert record["identity"]["environment_label"] == f"the grid, basf2 {RELEASE}"
    assert record["host"].startswith("the grid (project b2boxt") and record["outputs"] == ["ntuple.root"]
    again = workflow.run(datasets="A")
    assert "0 to run" in again.stderr and grid.calls()["gbasf2"] == 1, again.stderr
    workflow.release = "release-08-02-00"  # set up where the workflow is started: its tasks use it
    newer = workflow.run(datasets="A")
    assert newer.returncode == 0 and grid.calls()["gbasf2"] == 2, newer.stderr
    record = json.loads((workflow.folder / "results/dataset=A/.b2box-identity-ntuple.root.json").read_text())
    assert record["identity"]["environment_label"] == "the grid, basf2 release-08-02-00"


def test_killed_submitter_reattaches_without_a_second_submission(tmp_path: Path) -> None:
    grid = Grid(tmp_path, delay=2.0)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    first = workflow.start(datasets="A")
    deadline = time.monotonic() + 60
    while not grid.projects():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.kill()
    first.communicate(timeout=30)
    again = workflow.run(datasets="A")
    assert again.returncode == 0, again.stderr
    assert grid.calls()["gbasf2"] == 1, "the project was submitted once"
    assert len(list(workflow.dataset("A").iterdir())) == 3


def test_failed_download_is_resumed_and_never_looks_complete(tmp_path: Path, grid: Grid) -> None:
    grid.faults(download_fail=9)  # every try of the first run loses files
    workflow = GridWorkflow(tmp_path / "wf", grid)
    first = workflow.run(datasets="A")
    assert first.returncode == 1, first.stderr
    assert "download of grid project" in first.stderr and "incomplete" in first.stderr
    assert not workflow.dataset("A").exists(), "no output folder until the dataset is complete"
    assert workflow.folder.joinpath("results/dataset=A/ntuple.root.partial").is_dir()
    grid.faults()
    again = workflow.run(datasets="A")
    assert again.returncode == 0, again.stderr
    assert len(list(workflow.dataset("A").iterdir())) == 3 and grid.calls()["gbasf2"] == 1


def test_missing_proxy_stops_before_submitting_with_the_command_to_run(tmp_path: Path) -> None:
    grid = Grid(tmp_path, proxy=False)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    done = workflow.run(datasets="A")
    assert done.returncode == 1
    assert "no grid proxy" in done.stderr and "gb2_proxy_init -g belle" in done.stderr
    assert grid.calls()["gbasf2"] == 0 and grid.projects() == {}


def test_proxy_expiring_mid_run_stops_with_75_and_never_waits_for_a_password(tmp_path: Path) -> None:
    grid = Grid(tmp_path, delay=2.0)
    (grid.state / "proxy.json").write_text(json.dumps({"expires": time.time() + 70, "group": "belle"}))
    workflow = GridWorkflow(tmp_path / "wf", grid)
    run = workflow.start(datasets="A")
    deadline = time.monotonic() + 60
    while not grid.projects():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (grid.state / "proxy.json").write_text(json.dumps({"expires": time.time() - 1, "group": "belle"}))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 75, stderr
    assert "grid proxy expired" in stderr and "gb2_proxy_init" in stderr


@pytest.mark.parametrize("fault", ["killed", "stalled", "app_error"])
def test_project_with_a_job_that_cannot_succeed_ends(tmp_path: Path, grid: Grid, fault: str) -> None:
    grid.faults(**{fault: 1})
    workflow = GridWorkflow(tmp_path / "wf", grid)
    done = workflow.run(datasets="A", timeout=120)
    assert done.returncode == 1, done.stderr
    assert "grid project" in done.stderr and "failed" in done.stderr
    assert not workflow.dataset("A").exists()


def test_a_job_its_site_killed_for_memory_fails_in_diracs_words(tmp_path: Path, grid: Grid) -> None:
    """DIRAC reports a payload killed for its memory like any crash: b2box says what DIRAC said, and does not
    guess memory from it."""
    grid.faults(oom=1)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    done = workflow.run(datasets="A", timeout=120)
    assert done.returncode == 1, done.stderr
    said = "Failed: Application Finished With Errors (application: 'basf2helper.py' Exited With Status 9)"
    assert said in done.stderr
    assert "killed for memory" not in done.stderr and not workflow.dataset("A").exists()


def test_a_grid_job_whose_status_says_memory_is_killed_for_memory(tmp_path: Path) -> None:
    """A status that names the memory limit (a site's words: no DIRAC status does) makes the task killed for memory,
    DIRAC's words beside it."""
    grid = Grid(tmp_path, oom_status=["Job exceeded memory limit", "'basf2helper.py' Exited With Status 9"])
    grid.faults(oom=1)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    done = workflow.run(datasets="A", timeout=120)
    assert done.returncode == 1, done.stderr
    assert "killed for memory: its use was not measured" in done.stderr, done.stderr
    assert "Failed: Job exceeded memory limit" in done.stderr
    failure = next((workflow.folder / "logs").glob("**/failure.log")).read_text()
    assert "killed for memory" in failure and "Job exceeded memory limit" in failure, failure


def test_33_character_project_name_is_refused_before_submission(tmp_path: Path, grid: Grid) -> None:
    workflow = GridWorkflow(tmp_path / "wf", grid, gbasf2_project_name_prefix="p" * 23)
    done = workflow.run(datasets="A")
    assert done.returncode == 1 and "has 33 characters; gbasf2 allows 32" in done.stderr
    assert grid.calls()["gbasf2"] == 0


def test_flaky_status_query_is_retried(tmp_path: Path, grid: Grid) -> None:
    grid.faults(status_flake=2)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    done = workflow.run(datasets="A")
    assert done.returncode == 0, done.stderr
    assert "proxy has not Belle VOMS extensions" in done.stderr and "status query failed" in done.stderr


def test_interrupt_kills_the_projects(tmp_path: Path) -> None:
    grid = Grid(tmp_path, delay=30.0)
    workflow = GridWorkflow(tmp_path / "wf", grid)
    run = workflow.start(datasets="A")
    deadline = time.monotonic() + 60
    while not grid.projects():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(0.5)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert grid.calls()["gb2_job_kill"] == 1
    statuses = {job["Status"] for project in grid.projects().values() for job in project["jobs"].values()}
    assert statuses == {"Killed"}


def test_missing_setup_path_and_unknown_gbasf2_version_are_clear_errors(tmp_path: Path, grid: Grid) -> None:
    workflow = GridWorkflow(tmp_path / "wf", grid, gbasf2_setup_path=str(tmp_path / "nowhere/bashrc"))
    done = workflow.run(datasets="A")
    assert done.returncode == 1 and "gbasf2_setup_path" in done.stderr and "does not exist" in done.stderr
    (grid.home / "python/BelleDIRAC/__init__.py").write_text('version = "v4r6"\n')
    workflow = GridWorkflow(tmp_path / "wf2", grid)
    done = workflow.run(datasets="A")
    assert done.returncode == 1 and "gbasf2 v4r6" in done.stderr and "knows gbasf2 v5" in done.stderr


@pytest.mark.docker
def test_the_same_tasks_run_locally_in_docker_with_the_same_release(tmp_path: Path, grid: Grid, analysis_image: str
                                                                     ) -> None:  # fmt: skip
    workflow = GridWorkflow(tmp_path / "wf", grid, batch_system="local", image=analysis_image, runtime="docker",
                            env={"GRID_LOCAL_INPUT": str(tmp_path / "wf/input.root")})  # fmt: skip
    (tmp_path / "wf/input.root").write_text(json.dumps({"standin_root": 1, "events": 25}))
    done = workflow.run(datasets="A")
    assert done.returncode == 0, done.stderr
    assert json.loads(workflow.dataset("A").read_text())["release"] == RELEASE
    assert workflow.merged()["events"] == 25
