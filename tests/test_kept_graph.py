"""A kept graph (b2box.engine.kept_graph): a rerun with nothing to do, ``status`` and ``--dry-run`` make no task, and
everything that could change the graph or a result builds it again.

Each test runs tests/workflows/kept.py as a user does; the workflow appends a line to ``graph_built.log`` whenever
its ``requires()`` is called, which is what a built graph costs and a kept one does not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from b2box.engine import read_watch
from b2box.results import records
from tests.conftest import run_b2box, run_python

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The workflow, its module of sizes and two raw files, in a folder of their own."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(WORKFLOWS / "kept.py", folder / "kept.py")
    (folder / "kept_sizes.py").write_text("COUNT = 3\n")
    (folder / "raw").mkdir()
    for name in ("a.root", "b.root"):
        (folder / "raw" / name).write_text(name)
    return folder


def builds(project: Path) -> int:
    """How often the graph was built (the workflow's requires() was called) so far."""
    log = project / "graph_built.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def run(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = run_python(project / "kept.py", *args, env=env)
    assert done.returncode in (0, 1), done.stderr
    return done


def kept_files(project: Path) -> list[Path]:
    return sorted((project / "results").glob(".b2box-graph-*.json"))


def test_a_rerun_with_nothing_to_do_makes_no_task_and_says_what_a_built_graph_says(project: Path) -> None:
    first = run(project)
    assert "6 tasks, 2 already complete, 4 to run" in first.stderr  # 2 raw inputs, 3 numbers, the total
    made = builds(project)  # (requires() is called to build the graph, and again by a task that reads its inputs)
    assert made >= 1 and len(kept_files(project)) == 1
    again = run(project)
    assert again.returncode == 0
    assert builds(project) == made, "the kept graph was not used: requires() was called again"
    assert "6 tasks, 6 already complete, 0 to run" in again.stderr
    assert "This progress looks :)" in again.stdout

    kept_status = run_b2box("status", str(project / "kept.py"), cwd=project)
    kept_dry_run = run(project, "--dry-run")
    assert builds(project) == made, "status and --dry-run used the kept graph too"
    off = {"B2BOX_KEEP_GRAPH": "false"}
    built_status = run_b2box("status", str(project / "kept.py"), cwd=project, env=off)
    built_dry_run = run(project, "--dry-run", env=off)
    assert builds(project) == made + 2, "keep_graph = false builds the graph every time"
    assert kept_status.returncode == built_status.returncode == 0
    assert kept_status.stdout == built_status.stdout  # the counts and what each family used, as built
    assert "Number" in kept_status.stdout and "measured" in kept_status.stdout
    assert kept_dry_run.stdout == built_dry_run.stdout == "All tasks are finished!\n"


def test_status_keeps_the_graph_it_had_to_build_and_another_shell_leaves_it_in_place(project: Path) -> None:
    run(project)
    _edit_the_script(project, pytest.MonkeyPatch())
    made = builds(project)
    assert run_b2box("status", str(project / "kept.py"), cwd=project).returncode == 0
    assert builds(project) == made + 1
    assert run_b2box("status", str(project / "kept.py"), cwd=project).returncode == 0
    assert builds(project) == made + 1, "status did not keep the complete graph it built"
    other_shell = run_b2box("status", str(project / "kept.py"), cwd=project, env={"SOME_VARIABLE": "1"})
    assert other_shell.returncode == 0 and builds(project) == made + 2
    again = run(project)  # (in the first shell's variables)
    assert "0 to run" in again.stderr
    assert builds(project) == made + 2, "the other shell's command dropped or replaced the kept graph"


def test_a_batch_run_keeps_its_graph_and_a_batch_rerun_with_nothing_to_do_submits_nothing(project: Path) -> None:
    local = {"B2BOX_BATCH_SYSTEM": "local"}
    first = run(project, "--batch", env=local)
    assert first.returncode == 0 and "4 to run" in first.stderr, first.stderr
    assert len(kept_files(project)) == 1, "a batch run that ended with everything complete keeps its graph"
    jobs = sorted((project / "task_files").rglob("job.sh"))
    assert jobs, "the first run's tasks ran as jobs"
    made = builds(project)
    for job in jobs:
        job.unlink()
    again = run(project, "--batch", env=local)
    assert again.returncode == 0 and "6 tasks, 6 already complete, 0 to run" in again.stderr, again.stderr
    assert builds(project) == made and not list((project / "task_files").rglob("job.sh")), "a job was prepared"
    (project / "results/index=1/number.txt").unlink()
    third = run(project, "--batch", env=local)
    assert third.returncode == 0 and "2 to run" in third.stderr, third.stderr
    assert (project / "results/index=1/number.txt").read_text() == "1\n"
    rebuilt = builds(project)
    assert rebuilt > made
    run(project, "--batch", env=local)
    assert builds(project) == rebuilt, "the graph the third run built was not kept"


def test_a_kept_graph_holds_no_value_of_an_environment_variable(project: Path) -> None:
    """The environments a kept graph checks again are kept without their variables' values (a secret among them)."""
    secret = "kept-graph-secret-4711"
    settings = {"env": {"LAB_PIN": secret}, "secret_env": ["LAB_*"]}
    (project / "settings.json").write_text(json.dumps(settings))
    assert run(project).returncode == 0 and len(kept_files(project)) == 1
    made = builds(project)
    assert run(project).returncode == 0 and builds(project) == made, "the kept graph was not used"
    files = [path for path in project.rglob("*") if path.is_file() and path.name != "settings.json"]
    assert [path for path in files if secret in path.read_text(errors="replace")] == []
    settings["env"]["LAB_PIN"] = "another-value"
    (project / "settings.json").write_text(json.dumps(settings))
    assert run(project).returncode == 0 and builds(project) > made, "a changed value builds the graph again"


def _delete_an_output(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "results/index=1/number.txt").unlink()


def _edit_the_script(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(project / "kept.py", "a") as script:
        script.write("# a comment\n")


def _edit_a_module_it_imports(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "kept_sizes.py").write_text("COUNT = 4\n")


def _add_a_raw_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "raw" / "c.root").write_text("c")


def _set_an_environment_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEPT_EXTRA", "1")  # (run_python passes the environment on)


def _add_a_settings_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "settings.json").write_text(json.dumps({"workers": 1}))


def _mark_a_run_as_making_results(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "results" / records.DIRTY_FILE).write_text("12345")


def _damage_the_kept_graph(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = kept_files(project)[0]
    kept.write_text(kept.read_text()[:100])


CHANGES: dict[str, tuple[Callable[[Path, pytest.MonkeyPatch], None], str]] = {
    "an output deleted": (_delete_an_output, "2 to run"),  # (it, and the total made from it)
    "the script edited": (_edit_the_script, "0 to run"),
    "a module it imports edited": (_edit_a_module_it_imports, "2 to run"),
    "a file in a folder requires() lists": (_add_a_raw_file, "7 tasks"),
    "an environment variable": (_set_an_environment_variable, "2 to run"),
    "a settings file made": (_add_a_settings_file, "0 to run"),
    "a run making results (or killed while it did)": (_mark_a_run_as_making_results, "0 to run"),
    "the kept graph damaged": (_damage_the_kept_graph, "0 to run"),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_what_may_change_the_graph_builds_it_again(project: Path, change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run(project)
    made = builds(project)
    run(project)
    assert builds(project) == made
    make, said = CHANGES[change]
    make(project, monkeypatch)
    again = run(project)
    assert again.returncode == 0, again.stderr
    rebuilt = builds(project)
    assert rebuilt > made, f"{change}: the kept graph was used"
    assert said in again.stderr
    if change != "a run making results (or killed while it did)":
        run(project)
        assert builds(project) == rebuilt, f"{change}: the graph built again was not kept"


def test_a_module_first_imported_while_the_graph_is_built_does_not_make_it_look_changed(project: Path) -> None:
    """An import looks for its module in every folder on sys.path, the script's first, which changes with every run
    (its lock folder comes and goes): those listings are Python's, not the user's, and keep no graph from being
    used (a requires() that imports lazily, and b2box's own lazy imports, once rebuilt every time)."""
    script = project / "kept.py"
    lazy = "    def requires(self):\n        import colorsys  # noqa\n"
    script.write_text(script.read_text().replace("    def requires(self):\n", lazy, 1))
    run(project)
    made = builds(project)
    again = run(project)
    assert "0 to run" in again.stderr
    assert builds(project) == made, "the kept graph was not used"


def test_a_script_rewritten_to_the_same_size_and_time_builds_it_again(project: Path) -> None:
    """A file changed twice within the file system's clock tick keeps its time; written to the same size it looks
    unchanged by its stamp: a recently changed file is kept by its content too."""
    script = project / "kept_sizes.py"
    run(project)
    made = builds(project)
    before = script.stat()
    script.write_text("COUNT = 2\n")  # the same size
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = run(project)
    assert builds(project) > made
    assert "5 tasks" in again.stderr  # (and the total, made from one number less, is made again)


def test_a_run_killed_after_an_output_was_deleted_leaves_no_kept_graph_that_says_complete(project: Path) -> None:
    """Only a run that ends with everything complete keeps a graph, and a kept graph is used only when every output
    is there: a run killed while it makes a missing result leaves nothing that says complete."""
    run(project)
    (project / "results/index=1/number.txt").unlink()
    ready = project / "ready"
    hanging = subprocess.Popen(
        [sys.executable, str(project / "kept.py")],
        cwd=project,
        env={**os.environ, "KEPT_HANG": "1", "KEPT_READY": str(ready)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the run did not reach the task"
    finally:
        os.killpg(hanging.pid, signal.SIGKILL)
        hanging.wait(timeout=30)
    status = run_b2box("status", str(project / "kept.py"), cwd=project)
    counts = next(line.split() for line in status.stdout.splitlines() if line.startswith("Number"))
    assert counts[1:] == ["2", "0", "0", "1", "3"]  # complete, stale, failed, pending, total
    again = run(project)
    assert again.returncode == 0 and "2 to run" in again.stderr
    assert (project / "results/index=1/number.txt").read_text() == "1\n"
    assert len(kept_files(project)) == 1


def test_reads_are_noted_from_the_building_thread_only(tmp_path: Path) -> None:
    (tmp_path / "listed").mkdir()
    (tmp_path / "read.txt").write_text("x")
    (tmp_path / "other.txt").write_text("y")

    def elsewhere() -> None:
        (tmp_path / "other.txt").read_text()

    with read_watch.watching() as reads:
        os.listdir(tmp_path / "listed")
        (tmp_path / "read.txt").read_text()
        (tmp_path / "written.txt").write_text("z")
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    os.listdir(tmp_path)  # after the block: not noted
    assert reads.folders == {str(tmp_path / "listed")}
    assert reads.files == {str(tmp_path / "read.txt")}
