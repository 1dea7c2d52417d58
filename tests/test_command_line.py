"""Exit codes and commands, run as a user runs them: in a fresh Python process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_b2box, run_python

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    script = tmp_path / "chain.py"
    shutil.copy(WORKFLOWS / "chain.py", script)
    return script


def counts_of(said: str, family: str) -> list[list[str]]:
    """The rows of ``family`` in b2box status's first table (the counts; what the tasks used follows, after a blank
    line)."""
    table = said.split("\n\n")[0]
    return [line.split() for line in table.splitlines() if line.startswith(family)]


def test_run_then_rerun_does_nothing_and_exits_zero(chain: Path) -> None:
    first = run_b2box("run", str(chain), cwd=chain.parent)
    assert first.returncode == 0, first.stderr
    assert "4 tasks, 0 already complete, 4 to run" in first.stderr  # the wrapper task counts too
    assert (chain.parent / "results/index=2/link.txt").read_text() == "partial 2"
    assert not (chain.parent / "task_files").exists(), "a plain run leaves no empty bookkeeping folder behind"
    again = run_b2box("run", str(chain), cwd=chain.parent)
    assert again.returncode == 0
    assert "0 to run" in again.stderr


def test_failure_exits_one_and_names_task_and_log(chain: Path) -> None:
    result = run_python(chain, env={"CHAIN_FAIL": "1"})
    assert result.returncode == 1
    assert "Link(index=1)" in result.stderr or "Link_1" in result.stderr
    log = chain.parent / "logs/index=1/Link/failure.log"
    assert str(log) in result.stderr and "failed on purpose" in log.read_text()
    assert not (chain.parent / "results/index=1/link.txt").exists()
    assert (chain.parent / "results/index=0/link.txt").exists()


def test_dry_run_exit_code_tells_whether_work_is_pending(chain: Path) -> None:
    pending = run_b2box("run", str(chain), "--dry-run", cwd=chain.parent)
    assert pending.returncode == 1 and "Would run" in pending.stdout
    assert run_python(chain).returncode == 0
    done = run_python(chain, "--dry-run")
    assert done.returncode == 0 and "All tasks are finished!" in done.stdout


def test_status_show_and_remove(chain: Path) -> None:
    assert run_python(chain).returncode == 0
    status = run_b2box("status", str(chain), cwd=chain.parent)
    assert status.returncode == 0
    assert counts_of(status.stdout, "Link") == [["Link", "3", "0", "0", "0", "3"]]
    show = run_b2box("show", str(chain), cwd=chain.parent)
    assert "✓ " + str(chain.parent / "results/index=2/link.txt") in show.stdout
    refused = run_b2box("remove", str(chain), "Link", cwd=chain.parent)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert (chain.parent / "results/index=0/link.txt").exists()
    removed = run_python(chain, "--remove-only", "Link", "-y")
    assert removed.returncode == 0
    assert not (chain.parent / "results/index=0/link.txt").exists()


def test_unknown_family_in_remove_is_a_clear_error(chain: Path) -> None:
    result = run_b2box("remove", str(chain), "Lnik", "--yes", cwd=chain.parent)
    assert result.returncode == 2
    assert "no task family Lnik" in result.stderr and "Traceback" not in result.stderr


def test_bad_settings_file_is_one_line_before_anything_runs(chain: Path) -> None:
    (chain.parent / "settings.json").write_text('{"workers": "two"}')
    result = run_b2box("run", str(chain), cwd=chain.parent)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{chain.parent / 'settings.json'}: setting 'workers'" in result.stderr
    assert not (chain.parent / "results").exists()


def test_script_that_never_calls_process(tmp_path: Path) -> None:
    script = tmp_path / "empty.py"
    script.write_text("import b2box\n")
    result = run_b2box("run", str(script), cwd=tmp_path)
    assert result.returncode == 2 and "never called b2box.process()" in result.stderr


def test_a_syntax_error_in_the_script_is_three_lines_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "syntax.py").write_text("import b2box\nx = = 1\n")
    result = run_b2box("run", "syntax.py", cwd=tmp_path)
    assert result.returncode == 2, "a broken script is a usage error, not a failed task (exit 1)"
    assert result.stderr.splitlines()[:3] == ["b2box: error: syntax.py:2: invalid syntax", "    x = = 1", "        ^"]
    assert "Traceback" not in result.stderr


def test_an_import_error_in_the_script_names_the_line_and_verbose_adds_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "imports.py").write_text("import b2box\n\nimport numpyy_not_here\n")
    result = run_b2box("run", "imports.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "b2box: error: imports.py:3: ModuleNotFoundError: No module named 'numpyy_not_here' "
        "(the script stopped before it called process(); --verbose shows the traceback)"
    ]
    verbose = run_b2box("run", "imports.py", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr


def start_hanging_at_link_1(chain: Path, ready: Path) -> subprocess.Popen[bytes]:
    """The chain workflow, running until its task Link(index=1) has started (and hangs there)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
    env.update(CHAIN_HANG="1", CHAIN_READY=str(ready))
    process = subprocess.Popen(
        [sys.executable, str(chain)], cwd=chain.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline and process.poll() is None, "the task never started"
        time.sleep(0.05)
    return process


def test_killed_mid_run_leaves_no_complete_looking_output(chain: Path, tmp_path: Path) -> None:
    process = start_hanging_at_link_1(chain, tmp_path / "ready")
    process.send_signal(signal.SIGKILL)
    process.wait()
    link = chain.parent / "results/index=1/link.txt"
    assert not link.exists(), "a killed task must not leave its output under the real name"
    partial = list((chain.parent / "results/index=1").glob(".b2box-partial-*-link.txt"))
    assert partial and partial[0].read_text() == "partial "
    rerun = run_python(chain)
    assert rerun.returncode == 0 and link.read_text() == "partial 1"


def test_an_interrupted_task_is_shown_as_interrupted_not_failed(chain: Path, tmp_path: Path) -> None:
    process = start_hanging_at_link_1(chain, tmp_path / "ready")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    status = run_b2box("status", str(chain), cwd=chain.parent)
    assert counts_of(status.stdout, "Link") == [["Link", "1", "0", "0", "2", "3"]], status.stdout
    assert "1 of the pending task(s) were interrupted last time (Ctrl-C or SIGTERM), not failed" in status.stdout
    dry = run_python(chain, "--dry-run")
    assert "Would run Link(index=1) (it was interrupted last time)" in dry.stdout and "failed" not in dry.stdout


def test_dispatch_survives_a_segfault(tmp_path: Path) -> None:
    script = tmp_path / "wf" / "dispatched.py"
    script.parent.mkdir()
    shutil.copy(WORKFLOWS / "dispatched.py", script)
    result = run_python(script, env={"RESULTS": str(tmp_path / "r")}, cwd=tmp_path)
    assert result.returncode == 1
    logs = tmp_path / "r/logs/Crashes"
    assert f"killed by signal SIGSEGV (exit code 139); logs: {logs}/stdout, {logs}/stderr" in result.stderr
    assert not (tmp_path / "r/never.txt").exists()
    assert (tmp_path / "r/fine.txt").exists()


def test_dispatched_tasks_run_through_their_wrapper_as_in_b2luigi(tmp_path: Path) -> None:
    """b2luigi starts a dispatched run() through its wrapper: its env, working_dir, and stdout/stderr log files."""
    script = tmp_path / "wf" / "dispatched.py"
    script.parent.mkdir()
    shutil.copy(WORKFLOWS / "dispatched.py", script)
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    result = run_python(script, env={"RESULTS": str(tmp_path / "r"), "WORKING_DIR": str(elsewhere)}, cwd=tmp_path)
    assert result.returncode == 1
    _pid, cwd, greeting = (tmp_path / "r/fine.txt").read_text().split()
    assert cwd == str(elsewhere) and greeting == "hi"
    logs = tmp_path / "r/logs/Survives"
    assert (logs / "stdout").read_text() == "hello from the dispatched run\n"
    assert json.loads((logs / "provenance.json").read_text())["exit_code"] == 0


def test_help_version_completion() -> None:
    for command in ([], ["run"], ["status"], ["show"], ["remove"], ["info"], ["init"], ["completion"]):
        result = run_b2box(*command, "--help", cwd=REPO)
        assert result.returncode == 0 and "Usage:" in result.stdout
    version = run_b2box("--version", cwd=REPO)
    assert version.returncode == 0 and "b2box" in version.stdout
    completion = run_b2box("completion", "bash", cwd=REPO)
    assert "_B2BOX_COMPLETE" in completion.stdout
    bare = run_b2box(cwd=REPO)
    assert bare.returncode == 0 and "Commands:" in bare.stdout and "run" in bare.stdout, "a bare b2box is the help"


def test_init_writes_a_workflow_that_runs(tmp_path: Path) -> None:
    assert run_b2box("init", "starter", cwd=tmp_path).returncode == 0
    ran = run_b2box("run", "starter/workflow.py", "--workers", "2", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert len(list((tmp_path / "starter/results").rglob("merged.txt"))) == 2
    again = run_b2box("init", "starter", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr


def test_info_lists_versions_and_settings(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text('{"workers": 2}')
    result = run_b2box("info", cwd=tmp_path)
    assert result.returncode == 0
    assert "luigi" in result.stdout and str(tmp_path / "settings.json") in result.stdout


def test_unknown_flags_fail_unless_ignored(chain: Path) -> None:
    refused = run_python(chain, "--my-own-flag")
    assert refused.returncode == 2 and "--my-own-flag" in refused.stderr
    script = chain.parent / "ignoring.py"
    script.write_text(
        chain.read_text().replace(
            "b2luigi.process(Chain())", "b2luigi.process(Chain(), ignore_additional_command_line_args=True)"
        )
    )
    accepted = run_python(script, "--my-own-flag")
    assert accepted.returncode == 0, accepted.stderr


def test_b2box_run_remove_output_removes_dependents_too(chain: Path) -> None:
    assert run_python(chain).returncode == 0
    removed = run_b2box("run", str(chain), "--remove-output", "Link", "--yes", cwd=chain.parent)
    assert removed.returncode == 0, removed.stderr
    assert not list((chain.parent / "results").rglob("link.txt"))


def test_command_line_workers_win_over_the_script_and_batch_runs_say_their_limit(tmp_path: Path) -> None:
    """faults.py calls process(..., workers=$FAULT_WORKERS): --workers wins; --batch prints the limit in force."""
    script = tmp_path / "faults.py"
    shutil.copy(WORKFLOWS / "faults.py", script)
    (tmp_path / "settings.json").write_text('{"result_dir": "results"}')
    env = {"FAULT_RUNS": str(tmp_path / "runs"), "FAULT_WORKERS": "4"}
    from_script = run_python(script, "--batch", env=env)
    assert from_script.returncode == 0, from_script.stderr
    assert "up to 4 jobs in flight at once (process(workers=...))" in from_script.stderr
    shutil.rmtree(tmp_path / "results")
    command_line = run_b2box("run", str(script), "--batch", "--workers", "1", cwd=tmp_path, env=env)
    assert command_line.returncode == 0, command_line.stderr
    assert "up to 1 jobs in flight at once (--workers)" in command_line.stderr
    shutil.rmtree(tmp_path / "results")
    default = run_python(script, "--batch", env={"FAULT_RUNS": str(tmp_path / "runs"), "FAULT_WORKERS": "0"})
    assert "up to 1000 jobs in flight at once (batch_workers)" in default.stderr
    assert "b2box: jobs run on this machine (batch_system 'local'" in default.stderr, "what auto chose, said once"
    if not any(shutil.which(command) for command in ("bsub", "condor_submit", "sbatch")):
        assert "'auto' finds none of bsub, condor_submit, sbatch on PATH)" in default.stderr
    assert default.stderr.count("jobs run without a container (the first: ") == 1, "the environment, said once"


def test_test_mode_prints_the_whole_traceback(chain: Path) -> None:
    result = run_python(chain, "--test", env={"CHAIN_FAIL": "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "link 1 failed on purpose" in result.stderr
    link = chain.parent / "results" / "index=0" / "link.txt"
    assert f"DEBUG:b2box:Link(index=0) starts; it makes {link}" in result.stderr, "--test's debug logs"
    assert "DEBUG:b2box:Link(index=0) is done" in result.stderr


def test_status_and_dry_run_show_tasks_that_failed_last_time(chain: Path) -> None:
    assert run_python(chain, env={"CHAIN_FAIL": "1"}).returncode == 1
    status = run_b2box("status", str(chain), cwd=chain.parent)
    assert counts_of(status.stdout, "Link") == [["Link", "1", "0", "1", "1", "3"]]
    dry = run_python(chain, "--dry-run")
    assert dry.stdout.count("(it failed last time)") == 1, dry.stdout
    assert run_python(chain).returncode == 0
    status = run_b2box("status", str(chain), cwd=chain.parent)
    assert counts_of(status.stdout, "Link") == [["Link", "3", "0", "0", "0", "3"]]
    used = status.stdout.split("\n\n")[1]  # what the finished tasks' last runs used, per family
    assert "run time median / max" in used and any(line.split()[:2] == ["Link", "3"] for line in used.splitlines())


def test_b2box_run_lists_every_flag_the_script_accepts(tmp_path: Path) -> None:
    from b2box.cli.process import build_parser

    script_flags = {
        option
        for action in build_parser()._actions
        if action.help != "==SUPPRESS==" and "-h" not in action.option_strings
        for option in action.option_strings
    }
    listed = run_b2box("run", "--help", cwd=tmp_path).stdout
    assert script_flags and all(flag in listed for flag in script_flags), script_flags - set(listed.split())
    assert {"--keep-jobs", "--keep", "--status", "--provenance"} <= script_flags


def test_graph_picture_and_tree_collapse_large_families(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ElementTree

    script = tmp_path / "faults.py"
    shutil.copy(WORKFLOWS / "faults.py", script)
    env = {"FAULT_RUNS": str(tmp_path / "runs"), "FAULT_N": "20", "FAULT_3": "fail"}
    assert run_python(script, env=env).returncode == 1
    drawn = run_b2box("graph", str(script), "-o", str(tmp_path / "wf.svg"), cwd=tmp_path, env=env)
    assert drawn.returncode == 0, drawn.stderr
    picture = (tmp_path / "wf.svg").read_text()
    ElementTree.fromstring(picture)  # well-formed SVG
    assert "Step x 20" in picture and "19 complete" in picture and "1 failed" in picture
    assert "#c62828" in picture, "the family with a failure is drawn in the failure colour"
    page = run_b2box("graph", str(script), "-o", str(tmp_path / "wf.html"), cwd=tmp_path, env=env)
    assert page.returncode == 0 and "<svg" in (tmp_path / "wf.html").read_text()
    tree = run_b2box("status", str(script), "--tree", cwd=tmp_path, env=env)
    assert tree.stdout.splitlines() == ["Total(count=20)  [pending]", "└─ Step x 20  [19 complete, 1 failed]"]


def test_at_exit_the_run_s_objects_are_left_to_the_os_after_the_script_s_own_handlers(tmp_path: Path) -> None:
    """The collector's last sweep over a large graph took seconds at exit (docs/speed.md): b2box freezes what is
    alive at exit out of it, after the script's own exit handlers (which still see a collector that works)."""
    script = tmp_path / "frozen.py"
    script.write_text(
        "import atexit, gc\n"
        "atexit.register(lambda: print('at the very end, frozen:', gc.get_freeze_count() > 0))\n"
        "import b2box\n"
        "class Done(b2box.Task):\n"
        "    def output(self):\n"
        "        yield self.add_to_output('done.txt')\n"
        "    def run(self):\n"
        "        open(self.get_output_file_name('done.txt'), 'w').write('1')\n"
        "b2box.set_setting('result_dir', 'results')\n"
        "b2box.process(Done())\n"
        "atexit.register(lambda: print('the script s handler, frozen:', gc.get_freeze_count() > 0))\n"
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "the script s handler, frozen: False",
        "at the very end, frozen: True",
    ], done.stdout


def test_provenance_of_plain_tasks_says_which_tasks_write_it(chain: Path) -> None:
    assert run_python(chain).returncode == 0
    shown = run_b2box("provenance", str(chain), cwd=chain.parent)
    assert shown.returncode == 0, shown.stderr
    assert "No job records yet: provenance.json is written by every task that runs as a job" in shown.stdout
    assert "each task with a container image, with or without --batch" in shown.stdout


def test_the_command_line_sets_the_root_task_s_parameters_and_chooses_the_task(tmp_path: Path) -> None:
    shutil.copy(WORKFLOWS / "total.py", tmp_path / "wf.py")
    assert run_b2box("run", "wf.py", "--n", "3", cwd=tmp_path).returncode == 0
    assert (tmp_path / "results/n=3/label=x/total.txt").read_text() == "3"
    luigi_form = run_python(tmp_path / "wf.py", "--Total-n", "4", "--label=y", "--batch")
    assert luigi_form.returncode == 0, luigi_form.stderr
    assert (tmp_path / "results/n=4/label=y/total.txt").read_text() == "4", "jobs rebuild the root as given"
    other = run_b2box("run", "wf.py", "--task", "Number", "--index", "7", cwd=tmp_path)
    assert other.returncode == 0 and (tmp_path / "results/index=7/n.txt").read_text() == "7"
    for arguments, said in [
        (["--lable", "z"], "b2box: error: no such option: --lable (did you mean --label?). The run starts from Total"),
        (["--n", "three"], "b2box: error: --n 'three': not a valid value for Total.n"),
        (["--n"], "b2box: error: option --n needs a value (--n VALUE)"),
        (["--task", "Numbr"], "no such task family in the script; did you mean 'Number'? it has: Number, Total"),
        (["--task", "Number"], "b2box: error: --task Number needs --index VALUE"),
    ]:
        refused = run_b2box("run", "wf.py", *arguments, cwd=tmp_path)
        assert refused.returncode == 2 and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and len(refused.stderr.splitlines()) == 1


BROKEN = """import b2box


class Part(b2box.Task):
    index = b2box.IntParameter()

    def output(self):
        if self.index == 1:
            return {"x": self.missing_attribute}
        yield self.add_to_output("part.txt")

    def run(self):
        open(self.get_output_file_name("part.txt"), "w").write("1")


class Whole(b2box.Task):
    def requires(self):
        yield Part(index=0)
        yield Part(index=1)
        if BREAK_REQUIRES:
            1 / 0

    def output(self):
        yield self.add_to_output("whole.txt")


BREAK_REQUIRES = True
if __name__ == "__main__":
    b2box.set_setting("result_dir", "results")
    b2box.process(Whole())
"""


def test_a_task_whose_requires_or_output_raises_stops_the_run_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN)
    for mode in ([], ["--batch"]):
        result = run_b2box("run", "broken.py", *mode, cwd=tmp_path)
        assert result.returncode == 2, "the script's to fix, not a failed task"
        error = result.stderr[result.stderr.index("b2box: error:") :].splitlines()
        assert error == [
            "b2box: error: the workflow cannot be set up; fix these and run again:",
            "  Whole(): requires() raised ZeroDivisionError: division by zero (broken.py:21)",
        ], result.stderr
        assert not (tmp_path / "results").exists(), "nothing ran"
    (tmp_path / "broken.py").write_text(BROKEN.replace("BREAK_REQUIRES = True", "BREAK_REQUIRES = False"))
    result = run_python(tmp_path / "broken.py")
    assert result.returncode == 2 and result.stderr.splitlines()[1:] == [
        "  Part(index=1): output() raised AttributeError: 'Part' object has no attribute 'missing_attribute' "
        "(broken.py:9)"
    ], result.stderr


def test_status_reads_what_local_runs_used_from_the_result_folder_s_index(chain: Path) -> None:
    """A hundred thousand results: status reads one index per result folder, not a record per result."""
    assert run_python(chain).returncode == 0
    records = list((chain.parent / "results").rglob(".b2box-identity-*.json"))
    assert len(records) == 3
    kept = {path: path.read_text() for path in records}
    for path in records:
        path.unlink()  # were status to read them, it would find no figures
    try:
        status = run_b2box("status", str(chain), cwd=chain.parent)
        used = status.stdout.split("\n\n")[1]
        assert any(line.split()[:2] == ["Link", "3"] for line in used.splitlines()), status.stdout
    finally:
        for path, text in kept.items():
            path.write_text(text)


def test_importing_b2box_leaves_luigi_s_http_libraries_to_the_workflow() -> None:
    """A command starts faster without requests and tornado, which luigi needs only for a central scheduler (then it
    uses urllib); a workflow that wants them imports them as usual."""
    check = (
        "import sys, b2box, luigi.rpc; assert 'requests' not in sys.modules and 'tornado' not in sys.modules; "
        "assert not luigi.rpc.HAS_REQUESTS; import requests, tornado; print('imported', requests.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "imported requests" in done.stdout, done.stderr


COUNTED = """
import atexit, os, sys
import b2box as b2luigi
from b2box.engine.graph import TaskGraph
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chain import Chain

built = []
plain = TaskGraph.build.__func__
TaskGraph.build = classmethod(lambda cls, *args, **kwargs: built.append(1) or plain(cls, *args, **kwargs))
atexit.register(lambda: sys.stderr.write(f"task graphs built in {os.getpid()}: {len(built)}\\n"))

if __name__ == "__main__":
    b2luigi.set_setting("result_dir", "results")
    b2luigi.process(Chain())
"""


@pytest.mark.parametrize("command", [("run", "--batch"), ("run",), ("run", "--dry-run"), ("status",), ("graph",)])
def test_every_command_builds_the_task_graph_once(chain: Path, command: tuple[str, ...]) -> None:
    """Building the graph is what a user waits for before anything happens: once per command, --batch included."""
    script = chain.parent / "counted.py"
    script.write_text(COUNTED)
    (chain.parent / "settings.json").write_text('{"batch_system": "local"}')
    verb, *flags = command
    process = subprocess.Popen(
        [sys.executable, "-m", "b2box.cli", verb, str(script), *flags],
        cwd=chain.parent,
        env={key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == (1 if "--dry-run" in flags else 0), out + err  # (a dry run with work to do: 1)
    assert f"task graphs built in {process.pid}: 1\n" in err, out + err
