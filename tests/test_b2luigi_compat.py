"""b2luigi 1.3 behaviours a project relies on, one test each (b2luigi's sdist carries no tests to run instead)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import luigi
import pytest

import b2box as b2luigi
from b2box.cli import inspection
from tests.conftest import run_b2box, run_python

WORKFLOWS = Path(__file__).parent / "workflows"


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    script = tmp_path / "wf" / "chain.py"
    script.parent.mkdir()
    shutil.copy(WORKFLOWS / "chain.py", script)
    return script


removed: list[str] = []


class Source(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("source.txt")

    def remove_output(self):
        removed.append(f"Source({self.index})")
        super().remove_output()


class Sink(b2luigi.Task):
    def requires(self):
        for index in range(2):
            yield Source(index=index)

    def output(self):
        yield self.add_to_output("sink.txt")

    def remove_output(self):
        removed.append("Sink")
        super().remove_output()


def test_remove_calls_remove_output_on_every_chosen_task_also_without_outputs(tmp_path: Path) -> None:
    removed.clear()
    made = Path(Source(index=0).get_output_file_name("source.txt"))
    made.parent.mkdir(parents=True)
    made.write_text("x")  # Source(0) has its output; Source(1) and Sink have none
    out = io.StringIO()
    count = inspection.remove_outputs([Sink()], ["Source"], out=out)
    assert count == 3 and sorted(removed) == ["Sink", "Source(0)", "Source(1)"]
    assert not made.exists()
    assert "Source (2 tasks, 1 with outputs)" in out.getvalue()
    removed.clear()
    inspection.remove_outputs([Sink()], ["Source"], keep=["Sink"], out=io.StringIO())
    assert sorted(removed) == ["Source(0)", "Source(1)"]


def test_dry_run_exit_status_is_b2boxs_unless_switched_to_b2luigis(chain: Path) -> None:
    pending = run_python(chain, "--dry-run")
    assert pending.returncode == 1 and "In total 4 tasks" in pending.stdout
    (chain.parent / "settings.json").write_text(json.dumps({"dry_run_pending_exit": 0}))
    as_b2luigi = run_python(chain, "--dry-run")
    assert as_b2luigi.returncode == 0 and "Would run Link(index=2)" in as_b2luigi.stdout
    assert "dry_run_pending_exit = 0: exit 0, as b2luigi" in " ".join(run_python(chain, "--help").stdout.split())


def test_luigi_summary_lines_are_printed_for_scripts_that_grep_them(chain: Path) -> None:
    said_once = run_python(chain, env={"CHAIN_FAIL": "1"})
    assert said_once.returncode == 1
    assert "Failed task" not in said_once.stdout, "each failure is said once: in b2box's summary on stderr"
    assert "Link(index=1)  log: " in said_once.stderr and "could not run: they need Link(index=1)" in said_once.stderr
    assert said_once.stdout.rstrip().endswith("This progress looks :( because there were failed tasks")
    failed = run_python(chain, "--luigi-summary", env={"CHAIN_FAIL": "1"})
    assert failed.returncode == 1
    log_folder = chain.parent / "logs" / "index=1" / "Link"
    assert (
        "Failed task Link(index=1) with task_id and parameters:\n\ttask_id=Link_1_bd6ad7b0e4\n\tindex=1\n"
        f"Please have a look into the log files in:\n{log_folder}\n"
    ) in failed.stdout
    assert failed.stdout.rstrip().endswith("This progress looks :( because there were failed tasks")
    repaired = run_python(chain)
    assert repaired.returncode == 0
    assert "This progress looks :) because there were no failed tasks or missing dependencies" in repaired.stdout
    assert "Failed task" not in repaired.stdout


class Written(b2luigi.Task):
    fail = b2luigi.BoolParameter(default=False)

    def output(self):
        yield self.add_to_output("table.csv")

    def run(self):
        target = self._get_output_target("table.csv")
        with target.temporary_path(task=self) as scratch:
            assert Path(scratch).parent.parent == Path(b2luigi.get_setting("scratch_dir"))
            assert Path(scratch).name.startswith("table-luigi-tmp-") and scratch.endswith(".csv")
            Path(scratch).write_text("a,b\n")
        assert not Path(target.path).exists(), "moved into the staged output: real name only after run()"
        if self.fail:
            raise RuntimeError("fails after writing")


def test_local_target_is_b2luigis_with_scratch_copies_consistent_with_atomic_outputs(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    b2luigi.set_setting("scratch_dir", str(scratch))
    assert [type(target) for target in luigi.task.flatten(Written().output())] == [b2luigi.LocalTarget]
    assert issubclass(b2luigi.LocalTarget, luigi.LocalTarget)
    failed = b2luigi.process(Written(fail=True), argv=["--workers", "1"], exit_on_failure=False)
    assert not failed and not Path(Written(fail=True).get_output_file_name("table.csv")).exists()
    assert b2luigi.process(Written(), argv=["--workers", "1"])
    final = Path(Written().get_output_file_name("table.csv"))
    assert final.read_text() == "a,b\n" and not list(scratch.iterdir()), "scratch space is cleaned"
    with b2luigi.LocalTarget(str(final)).get_temporary_input(task=Written()) as copy:
        assert Path(copy).parent.parent == scratch and Path(copy).read_text() == "a,b\n"
    assert not list(scratch.iterdir())
    outside = b2luigi.LocalTarget(str(tmp_path / "plain" / "out.txt"))
    with outside.temporary_path() as scratch_file:
        Path(scratch_file).write_text("x")
    assert Path(outside.path).read_text() == "x"


def test_custom_batch_system_runs_a_b2luigi_batch_process_plug_in(tmp_path: Path) -> None:
    script = tmp_path / "wf" / "custom_plugin.py"
    script.parent.mkdir()
    shutil.copy(WORKFLOWS / "custom_plugin.py", script)
    calls = tmp_path / "calls.log"
    failed = run_python(script, env={"PLUGIN_CALLS": str(calls), "PLUGIN_FAIL": "1"})
    assert failed.returncode == 1
    started = calls.read_text().splitlines()
    assert sorted(line.split("_")[0] for line in started) == ["start Square"] * 3, "one start_job() per task"
    results = script.parent / "results"
    assert (results / "number=2" / "square.txt").read_text() == "4"
    assert not (results / "number=1" / "square.txt").exists()
    record = json.loads((script.parent / "logs/number=2/Square/provenance.json").read_text())
    assert record["backend"] == "custom" and record["job_id"].startswith("custom-") and record["exit_code"] == 0
    assert "Square(number=1)" in failed.stderr
    assert "square of 1 failed on purpose" in (script.parent / "logs/number=1/Square/stderr").read_text()

    missing = run_python(script, env={"PLUGIN_CALLS": str(calls), "PLUGIN_MISSING": "1"})
    assert missing.returncode == 1
    assert "NoPlugin runs with batch_system = 'custom' but has no process_class" in missing.stdout + missing.stderr
    assert (results / "number=1" / "square.txt").read_text() == "1", "the others ran"


def test_custom_backend_setting_loads_a_b2box_native_backend(tmp_path: Path) -> None:
    script = tmp_path / "wf" / "custom_plugin.py"
    script.parent.mkdir()
    shutil.copy(WORKFLOWS / "custom_plugin.py", script)
    shutil.copy(WORKFLOWS / "site_backend.py", script.parent / "site_backend.py")
    (script.parent / "settings.json").write_text(json.dumps({"custom_backend": "site_backend:SiteBackend"}))
    done = run_python(script, env={"PLUGIN_CALLS": str(tmp_path / "calls.log")})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "calls.log").exists(), "the native backend ran the jobs, not the process_class"
    record = json.loads((script.parent / "logs/number=2/Square/provenance.json").read_text())
    assert record["backend"] == "custom" and record["job_id"].startswith("local-"), "the site backend's job ids"
    assert (script.parent / "results/number=2/square.txt").read_text() == "4"
    (script.parent / "settings.json").write_text(json.dumps({"custom_backend": "site_backend:NoSuchBackend"}))
    (script.parent / "results/number=2/square.txt").unlink()
    broken = run_python(script, env={"PLUGIN_CALLS": str(tmp_path / "calls.log")})
    assert broken.returncode == 2
    assert "setting 'custom_backend' = 'site_backend:NoSuchBackend' cannot be loaded" in broken.stderr


@pytest.mark.parametrize("batch", [False, True])
def test_own_keys_of_a_settings_json_in_the_working_directory_reach_a_script_elsewhere(
    tmp_path: Path, batch: bool
) -> None:
    script = tmp_path / "analysis" / "scripts" / "greeting.py"
    script.parent.mkdir(parents=True)
    shutil.copy(WORKFLOWS / "greeting.py", script)
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"greeting": "hello", "result_dir": str(data / "results")}))
    done = run_python(script, *(["--batch"] if batch else []), cwd=data, env={"B2BOX_BATCH_SYSTEM": "local"})
    assert done.returncode == 0, done.stderr
    assert (data / "results" / "greeting.txt").read_text() == "hello"
    assert f"{data / 'settings.json'}: unknown setting 'greeting'" in done.stderr, "a warning, not an error"
    finished = run_python(script, "--dry-run", cwd=data)
    assert finished.returncode == 0 and "All tasks are finished!" in finished.stdout
    info = run_b2box("info", str(script), cwd=data)
    assert f"settings files: {data / 'settings.json'}" in info.stdout
