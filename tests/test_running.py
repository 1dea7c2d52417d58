"""Running workflows here: order, failures, atomic outputs, dynamic dependencies, workers."""

from __future__ import annotations

import os
from pathlib import Path

import luigi.task
import pytest

import b2box as b2luigi
from b2box.engine.graph import State


def run(*tasks, workers: int = 1):
    return b2luigi.process(list(tasks), argv=[], workers=workers, exit_on_failure=False)


class Step(b2luigi.Task):
    index = b2luigi.IntParameter()
    fail_at = b2luigi.IntParameter(default=-1, significant=False)

    def requires(self):
        if self.index > 0:
            yield self.clone(index=self.index - 1)

    def output(self):
        yield self.add_to_output("step.txt")

    def run(self):
        if self.index == self.fail_at:
            with open(self.get_output_file_name("step.txt"), "w") as handle:
                handle.write("half")
            raise RuntimeError(f"step {self.index} broke")
        with open(self.get_output_file_name("step.txt"), "w") as handle:
            handle.write(str(self.index))


def test_chain_runs_in_dependency_order(tmp_path: Path) -> None:
    result = run(Step(index=30))
    assert result.success
    assert result.counts[State.DONE] == 31
    assert (tmp_path / "results/index=30/step.txt").read_text() == "30"


@pytest.mark.parametrize("workers", [1, 3])
def test_failure_blocks_dependents_and_leaves_no_output(tmp_path: Path, workers: int) -> None:
    result = run(Step(index=5, fail_at=2), workers=workers)
    assert not result
    states = {node.task.index: node.state for node in result.graph.nodes.values()}
    assert states[0] is State.DONE and states[1] is State.DONE
    assert states[2] is State.FAILED
    assert all(states[i] is State.BLOCKED for i in (3, 4, 5))
    assert not (tmp_path / "results/index=2/step.txt").exists()
    assert not [p for p in (tmp_path / "results/index=2").iterdir()], "no partial files left behind"
    failed = result.failed[0]
    assert "step 2 broke" in (failed.error or "")
    assert failed.log_path and "step 2 broke" in Path(failed.log_path).read_text()


def test_rerun_after_failure_runs_only_the_rest(tmp_path: Path) -> None:
    run(Step(index=3, fail_at=2))
    result = run(Step(index=3))
    assert result.success and result.counts[State.COMPLETE] == 2 and result.counts[State.DONE] == 2


def test_deleting_an_input_reruns_it_and_what_depends_on_it(tmp_path: Path) -> None:
    assert run(Step(index=4)).success
    os.remove(tmp_path / "results/index=2/step.txt")
    result = run(Step(index=4))
    done = sorted(node.task.index for node in result.graph.nodes.values() if node.state is State.DONE)
    assert done == [2, 3, 4]


def test_missing_external_input_is_reported_and_blocks() -> None:
    class Raw(b2luigi.ExternalTask):
        def output(self):
            yield self.add_to_output("raw.root")

    @b2luigi.requires(Raw)
    class Reco(b2luigi.Task):
        def output(self):
            yield self.add_to_output("reco.root")

        def run(self):  # pragma: no cover - must never run
            raise AssertionError("ran without its input")

    result = run(Reco())
    assert not result
    assert {node.family: node.state for node in result.graph.nodes.values()} == {
        "Raw": State.MISSING,
        "Reco": State.BLOCKED,
    }
    assert "raw.root" in (result.failed[0].error or "")


def test_two_tasks_with_one_output_path_fail_before_either_runs(tmp_path: Path) -> None:
    """A merge named like its input (no parameter tells them apart) would replace its own input."""

    class Ntuples(b2luigi.Task):
        def output(self):
            yield self.add_to_output("ntuple.root")

        def run(self):  # pragma: no cover - must never run
            raise AssertionError("ran although its output collides")

    @b2luigi.requires(Ntuples)
    class Merged(b2luigi.Task):
        def output(self):
            yield self.add_to_output("ntuple.root")

        def run(self):  # pragma: no cover - must never run
            raise AssertionError("ran although its output collides")

    result = run(Merged())
    assert not result
    states = {node.family: node.state for node in result.graph.nodes.values()}
    assert states == {"Merged": State.BLOCKED, "Ntuples": State.FAILED}
    (failed,) = [node for node in result.graph.nodes.values() if node.state is State.FAILED]
    assert str(tmp_path / "results" / "ntuple.root") in (failed.error or "") and "Merged()" in (failed.error or "")
    assert not (tmp_path / "results").exists()


def test_run_that_forgets_an_output_fails_with_the_missing_path(tmp_path: Path) -> None:
    class Forgetful(b2luigi.Task):
        def output(self):
            yield self.add_to_output("a.txt")
            yield self.add_to_output("b.txt")

        def run(self):
            with open(self.get_output_file_name("a.txt"), "w") as handle:
                handle.write("a")

    result = run(Forgetful())
    assert not result
    assert "did not create" in (result.failed[0].error or "") and "b.txt" in (result.failed[0].error or "")


def test_outputs_replace_what_stands_in_their_place_and_outputs_written_in_place_count(tmp_path: Path) -> None:
    """A commit moves a file over a folder and a folder over a full folder (left by an older workflow); an output a
    run() wrote at its final path itself (not staged) still counts as made."""

    class Mixed(b2luigi.Task):
        def output(self):
            yield self.add_to_output("table.txt")
            yield self.add_to_output("plots")
            yield self.add_to_output("direct.txt")

        def run(self):
            with open(self.get_output_file_name("table.txt"), "w") as handle:
                handle.write("new table")
            plots = self.get_output_file_name("plots")
            os.makedirs(plots)
            Path(plots, "new.png").write_text("png")
            direct = next(target for target in luigi.task.flatten(self.output()) if target.path.endswith("direct.txt"))
            Path(direct.path).write_text("written in place")

    results = tmp_path / "results"
    (results / "table.txt").mkdir(parents=True)
    (results / "table.txt" / "old").write_text("old")
    (results / "plots").mkdir()
    (results / "plots" / "old.png").write_text("old")
    assert run(Mixed())
    assert (results / "table.txt").read_text() == "new table"
    assert sorted(os.listdir(results / "plots")) == ["new.png"]
    assert (results / "direct.txt").read_text() == "written in place"


def test_dynamic_dependencies_are_run_before_run_continues(tmp_path: Path) -> None:
    class Dynamic(b2luigi.Task):
        def output(self):
            yield self.add_to_output("dynamic.txt")

        def run(self):
            steps = [Step(index=1), Step(index=2)]
            outputs = yield steps
            assert len(outputs) == 2
            contents = [Path(step.get_output_file_name("step.txt")).read_text() for step in steps]
            with open(self.get_output_file_name("dynamic.txt"), "w") as handle:
                handle.write(",".join(contents))

    assert run(Dynamic()).success
    assert (tmp_path / "results/dynamic.txt").read_text() == "1,2"


def test_workers_run_tasks_in_parallel_processes(tmp_path: Path) -> None:
    class Pid(b2luigi.Task):
        index = b2luigi.IntParameter()

        def output(self):
            yield self.add_to_output("pid.txt")

        def run(self):
            with open(self.get_output_file_name("pid.txt"), "w") as handle:
                handle.write(str(os.getpid()))

    class AllPids(b2luigi.WrapperTask):
        def requires(self):
            return [Pid(index=i) for i in range(6)]

    assert run(AllPids(), workers=3).success
    pids = {(tmp_path / f"results/index={i}/pid.txt").read_text() for i in range(6)}
    assert str(os.getpid()) not in pids and len(pids) == 3, "three worker processes, none of them the scheduler"


def test_crash_of_a_worker_process_fails_only_that_task(tmp_path: Path) -> None:
    class Crash(b2luigi.Task):
        index = b2luigi.IntParameter()

        def output(self):
            yield self.add_to_output("c.txt")

        def run(self):
            with open(self.get_output_file_name("c.txt"), "w") as handle:
                handle.write("partial")
            if self.index == 1:
                os._exit(9)

    result = run(*[Crash(index=i) for i in range(3)], workers=2)
    states = {node.task.index: node.state for node in result.graph.nodes.values()}
    assert states == {0: State.DONE, 1: State.FAILED, 2: State.DONE}
    assert "exit code 9" in (result.failed[0].error or "")
    assert not (tmp_path / "results/index=1/c.txt").exists()


def test_luigi_events_and_hooks_fire(tmp_path: Path) -> None:
    """They fire where the task runs: in its worker process (see engine/workers.py), so they leave a file."""
    journal = tmp_path / "events.txt"

    def seen_append(event: str) -> None:
        with journal.open("a") as handle:
            handle.write(event + "\n")

    class Hooked(b2luigi.Task):
        def output(self):
            yield self.add_to_output("h.txt")

        def run(self):
            with open(self.get_output_file_name("h.txt"), "w") as handle:
                handle.write("x")

        def on_success(self):
            seen_append("on_success")

    @Hooked.event_handler(b2luigi.Event.SUCCESS)
    def remember(task):
        seen_append("SUCCESS")

    @Hooked.event_handler(b2luigi.Event.START)
    def started(task):
        seen_append("START")

    assert run(Hooked()).success
    assert journal.read_text().split() == ["START", "on_success", "SUCCESS"]


def test_on_temporary_files_stages_when_run_is_called_directly(tmp_path: Path) -> None:
    class Direct(b2luigi.Task):
        def output(self):
            yield self.add_to_output("d.txt")

        @b2luigi.on_temporary_files
        def run(self):
            path = self.get_output_file_name("d.txt")
            assert ".b2box-partial-" in path
            with open(path, "w") as handle:
                handle.write("x")
            raise RuntimeError("late failure")

    with pytest.raises(RuntimeError):
        Direct().run()
    assert not (tmp_path / "results/d.txt").exists()


def test_grouped_tasks_run_individually_here(tmp_path: Path) -> None:
    class G(b2luigi.Task):
        value = b2luigi.BatchIntParameter(grouping=True)
        max_grouping_size = 5

        def output(self):
            yield self.add_to_output("g.txt")

        def run(self):
            with open(self.get_output_file_name("g.txt"), "w") as handle:
                handle.write(str(self.value))

    assert run(*[G(value=i) for i in range(4)]).success
    assert (tmp_path / "results/value=3/g.txt").read_text() == "3"


def test_building_a_graph_leaves_the_cycle_collector_as_it_found_it(tmp_path: Path) -> None:
    """The build holds off full collections while it grows the heap; the caller's thresholds come back, also after a
    requires() that raises (its task is reported broken)."""
    import gc

    from b2box.engine.graph import TaskGraph

    class Broken(b2luigi.Task):
        def requires(self):
            raise ValueError("no inputs today")

    before = gc.get_threshold()
    TaskGraph.build([Step(index=2)])
    assert gc.get_threshold() == before
    graph = TaskGraph.build([Broken()])
    assert "no inputs today" in (graph.roots[0].error or "")
    assert gc.get_threshold() == before
