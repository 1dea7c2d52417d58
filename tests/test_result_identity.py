"""Every result knows what made it: a changed environment, input or code makes it stale, not silently complete.

The workflow (tests/workflows/identity.py) stamps each output with the run that made it, so each test sees exactly
which results a run made again. These run without a container; the Docker, Apptainer, HTCondor, Slurm, LSF and
gbasf2 cases are in the tests of each backend (test_containers_docker, test_pool, test_lsf, test_gbasf2).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.identity_runs import NAMES, b2box, made_again, row, run, setup, stamps, status


def test_a_changed_variable_reruns_that_task_and_its_dependents_and_nothing_else(tmp_path: Path) -> None:
    setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    assert run(tmp_path) == set(), "a no-op rerun makes nothing again"
    changed = {"IDENTITY_FLAVOUR_1": "spicy"}
    table = status(tmp_path, "--why", env=changed)
    assert row(table, "Number") == [3, 1, 0, 0, 3]
    assert row(table, "Sum") == [0, 0, 0, 1, 1], "pending: an input runs again"
    assert "environment changed (env_script, variables or binds): run again: Number(index=1)" in table
    dry = b2box(tmp_path, "run", "identity.py", "--dry-run", env=changed, expect=1).stdout
    assert "Would run again Number(index=1) (stale: environment changed" in dry
    assert run(tmp_path, env=changed) == {"Number(1)", "Sum"}
    assert json.loads((tmp_path / "results/index=1/number.json").read_text())["flavour"] == "spicy"
    assert run(tmp_path, env=changed) == set()
    assert row(status(tmp_path, env=changed), "all") == [4, 0, 0, 0, 4]


def test_an_env_script_edit_reruns_every_task_that_sources_it(tmp_path: Path) -> None:
    setup(tmp_path, {"env_script": "env.sh"})
    (tmp_path / "env.sh").write_text("export SETUP=one\n")
    assert run(tmp_path) == set(NAMES)
    (tmp_path / "env.sh").write_text("export SETUP=one\n")  # rewritten, same content: not a change
    assert run(tmp_path) == set()
    (tmp_path / "env.sh").write_text("export SETUP=two\n")
    assert run(tmp_path) == set(NAMES)


def test_a_remade_input_makes_its_dependents_stale_transitively(tmp_path: Path) -> None:
    """Number(1) is remade alone in another environment; the next run of the whole tree remakes Sum only."""
    setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    other = {"IDENTITY_FLAVOUR_1": "other"}
    assert run(tmp_path, env={**other, "IDENTITY_ROOT": "1"}) == {"Number(1)"}
    assert "input Number(index=1) remade: run again: Sum" in status(tmp_path, "--why", env=other)
    assert run(tmp_path, env=other) == {"Sum"}


def edit_run(script: Path, old: str, new: str) -> None:
    text = script.read_text()
    assert old in text
    script.write_text(text.replace(old, new))


def test_a_code_change_is_reported_and_reruns_only_when_asked(tmp_path: Path) -> None:
    script = setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    edit_run(script, '"flavour": os.environ.get("FLAVOUR")', '"flavour": os.environ.get("FLAVOUR", "none")')
    table = status(tmp_path, "--why")
    assert row(table, "Number") == [3, 3, 0, 0, 3] and row(table, "Sum")[1] == 0
    assert "Number's code changed: kept (rerun_when): Number(index=0) and 2 more" in table
    before = stamps(tmp_path)
    done = b2box(tmp_path, "run", "identity.py")
    assert made_again(before, stamps(tmp_path)) == set()
    assert "3 result(s) are stale but were kept (setting rerun_when)" in done.stderr
    assert "Number(index=0): Number's code changed" in done.stderr
    assert run(tmp_path) == set(), "kept, run after run"
    assert run(tmp_path, "--rerun-stale") == set(NAMES), "the remade numbers remake their sum"
    assert run(tmp_path) == set()


def test_rerun_when_code_reruns_a_code_change(tmp_path: Path) -> None:
    script = setup(tmp_path, {"rerun_when": ["environment", "inputs", "code"]})
    assert run(tmp_path) == set(NAMES)
    edit_run(script, "total += json.load(handle)", "total += 0 + json.load(handle)")
    assert run(tmp_path) == {"Sum"}


def test_reformatting_comments_and_docstrings_are_not_a_change(tmp_path: Path) -> None:
    script = setup(tmp_path, {"rerun_when": ["environment", "inputs", "code"]})
    assert run(tmp_path) == set(NAMES)
    docstring = '    def run(self):\n        """Write the number."""\n        pause'
    edit_run(script, "    def run(self):\n        pause", docstring)
    edit_run(
        script,
        '        value = {"index": self.index, "flavour": os.environ.get("FLAVOUR"), "stamp": stamp()}\n',
        "        # one value per task\n\n"
        "        value = {\n            'index': self.index,\n            'flavour': os.environ.get('FLAVOUR'),\n"
        "            'stamp': stamp(),  # when\n        }\n",
    )
    table = status(tmp_path)
    assert row(table, "all") == [4, 0, 0, 0, 4], table
    assert run(tmp_path) == set()


def test_accept_adopts_stale_results_without_running_them(tmp_path: Path) -> None:
    script = setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    before = json.loads(next((tmp_path / "results/index=0").glob(".b2box-identity-*")).read_text())
    edit_run(script, '"stamp": stamp()}\n        with', '"stamp": stamp(), "v": 2}\n        with')
    stamped = stamps(tmp_path)
    done = b2box(tmp_path, "run", "identity.py", "--accept")
    assert "Adopted 4 result(s) as they are" in done.stdout, "three numbers, and the sum made from them"
    assert stamps(tmp_path) == stamped, "nothing ran"
    after = json.loads((tmp_path / "results/index=0/.b2box-identity-number.json.json").read_text())
    assert after["adopted_from"]["code"] == before["identity"]["code"] != after["identity"]["code"]
    assert row(status(tmp_path), "all") == [4, 0, 0, 0, 4]
    assert run(tmp_path, "--rerun-stale") == set(), "adopted: nothing is stale any more"
    shown = b2box(tmp_path, "provenance", "results/index=0/number.json").stdout
    assert "adopted      as it was (--accept)" in shown


def test_results_without_a_record_are_unknown_kept_and_adoptable(tmp_path: Path) -> None:
    """Outputs made by b2luigi (or an older b2box) carry no identity: never rerun for that."""
    setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    for record in (tmp_path / "results").rglob(".b2box-identit*"):
        record.unlink()
    table = status(tmp_path)
    assert row(table, "all") == [4, 0, 0, 0, 4]
    assert "4 result(s) were made without a record of what made them" in table
    assert run(tmp_path, env={"IDENTITY_FLAVOUR_1": "spicy"}) == set(), "unknown is never a reason to run"
    assert "Adopted 4 result(s)" in b2box(tmp_path, "run", "identity.py", "--accept").stdout
    assert "without a record" not in status(tmp_path)
    assert run(tmp_path) == set()


def test_provenance_of_an_output_names_task_environment_code_host_and_time(tmp_path: Path) -> None:
    setup(tmp_path)
    run(tmp_path)
    shown = b2box(tmp_path, "provenance", "results/index=1/number.json").stdout
    assert "made by      Number(index=1)" in shown
    assert "environment  the host (no container)" in shown
    assert re.search(r"code         fingerprint [0-9a-f]{16}", shown)
    assert re.search(r"made         \d{4}-\d\d-\d\dT.* on \S+", shown)
    total = b2box(tmp_path, "provenance", "results/sum.json").stdout
    assert re.search(r"inputs       Number_0_\w+ \[[0-9a-f]{16}\], Number_1_", total), total
    missing = b2box(tmp_path, "provenance", "results/nothing.json", expect=2)
    assert "results/nothing.json: no record of what made it (no such file)" in missing.stderr


def test_a_secret_in_the_spec_env_is_in_no_file(tmp_path: Path) -> None:
    secret = "s3cr3t-identity-value-81723"
    setup(tmp_path, {"secrets_dir": str(tmp_path / "secrets")})
    env = {"IDENTITY_SECRET": secret}
    b2box(tmp_path, "run", "identity.py", "--batch", env=env)
    assert len(stamps(tmp_path)) == 4
    records = list((tmp_path / "results").rglob(".b2box-identit*"))
    assert len(records) == 5, "four records and the result folder's index"
    leaks = [path for path in tmp_path.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]
    assert leaks == []
    assert run(tmp_path, env=env) == set(), "the same secret: not a change"


@pytest.mark.parametrize("batch", [False, True], ids=["local", "local-batch"])
def test_each_result_keeps_its_record_and_the_index_lists_it(tmp_path: Path, batch: bool) -> None:
    setup(tmp_path, {"tasks_per_job": 3} if batch else {})
    run(tmp_path, *(["--batch"] if batch else []))
    index = json.loads((tmp_path / "results/.b2box-identities.json").read_text())
    assert sorted(index["results"]) == ["index=0/number.json", "index=1/number.json", "index=2/number.json",
                                        "sum.json"]  # fmt: skip
    record = json.loads((tmp_path / "results/index=2/.b2box-identity-number.json.json").read_text())
    assert record["name"] == "Number(index=2)" and record["outputs"] == ["number.json"]
    assert (
        " ".join(record["identity"][aspect] for aspect in ("environment", "code", "parameters", "inputs"))
        == (index["results"]["index=2/number.json"])
    )
    assert not (tmp_path / "results/.b2box-identities.dirty").exists()


WRAPPED = """
import os
import b2box


class Leaf(b2box.Task):
    env = {"FLAVOUR": os.environ.get("LEAF_FLAVOUR", "plain")}

    def output(self):
        yield self.add_to_output("leaf.txt")

    def run(self):
        with open(self.get_output_file_name("leaf.txt"), "w") as handle:
            handle.write(os.environ["FLAVOUR"])


class Both(b2box.WrapperTask):
    def requires(self):
        yield Leaf()


class Top(b2box.Task):
    def requires(self):
        yield Both()

    def output(self):
        yield self.add_to_output("top.txt")

    def run(self):
        with open(self.get_output_file_name("top.txt"), "w") as handle:
            handle.write(open(Leaf().get_output_file_name("leaf.txt")).read())


if __name__ == "__main__":
    b2box.set_setting("result_dir", "results")
    b2box.process(Leaf() if os.environ.get("ONLY_LEAF") else Top())
"""


def test_a_remade_input_reaches_results_through_a_wrapper_task(tmp_path: Path) -> None:
    """A WrapperTask keeps no identity of its own: it passes on its inputs', so what is made from it is stale too."""
    (tmp_path / "wrapped.py").write_text(WRAPPED)
    b2box(tmp_path, "run", "wrapped.py")
    spicy = {"LEAF_FLAVOUR": "spicy"}
    b2box(tmp_path, "run", "wrapped.py", env={**spicy, "ONLY_LEAF": "1"})  # the leaf alone is remade
    done = b2box(tmp_path, "run", "wrapped.py", env=spicy)
    assert "3 tasks, 2 already complete, 1 to run (1 made again" in done.stderr, done.stderr
    assert (tmp_path / "results/top.txt").read_text() == "spicy"
    assert "0 to run" in b2box(tmp_path, "run", "wrapped.py", env=spicy).stderr


def test_a_job_that_commits_after_its_run_ended_is_not_run_again(tmp_path: Path) -> None:
    """A run stopped with --keep-jobs leaves a job running; it commits a new result after the run ended. The result
    folder's index (written by the stopped run) still holds the old identity: the next run must not trust it and
    run the task a second time."""
    setup(tmp_path)
    assert run(tmp_path) == set(NAMES)
    started = tmp_path / "started"
    env = {"IDENTITY_FLAVOUR_1": "spicy", "IDENTITY_SLEEP_1": "3", "IDENTITY_STARTED": str(started)}
    first = subprocess.Popen([sys.executable, "-m", "b2box.cli", "run", "identity.py", "--batch", "--keep-jobs"],
                             cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130 and "left running (--keep-jobs)" in stderr, stderr
    job = int(started.read_text())
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{job}"):
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.05)
    made = stamps(tmp_path)["Number(1)"]
    assert json.loads((tmp_path / "results/index=1/number.json").read_text())["flavour"] == "spicy"
    assert (tmp_path / "results/.b2box-identities.dirty").exists(), "the index may be behind: it says so"
    again = run(tmp_path, env={"IDENTITY_FLAVOUR_1": "spicy"})
    assert again == {"Sum"}, "Number(1) was made by the job that outlived its run: it is not made a second time"
    assert stamps(tmp_path)["Number(1)"] == made
    assert not (tmp_path / "results/.b2box-identities.dirty").exists()
