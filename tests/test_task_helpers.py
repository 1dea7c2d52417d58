"""b2luigi's input/output helpers, including the corner cases its documentation describes."""

from __future__ import annotations

from pathlib import Path

import pytest

import b2box as b2luigi
from b2box.cli.process import process


class Number(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("number.txt")
        yield self.add_to_output("square.txt")

    def run(self):
        for name, value in (("number.txt", self.index), ("square.txt", self.index**2)):
            with open(self.get_output_file_name(name), "w") as handle:
                handle.write(str(value))


class Sum(b2luigi.Task):
    def requires(self):
        for index in range(3):
            yield Number(index=index)

    def output(self):
        yield self.add_to_output("sum.txt")

    def run(self):
        total = sum(int(Path(path).read_text()) for path in self.get_input_file_names("number.txt"))
        with open(self.get_output_file_name("sum.txt"), "w") as handle:
            handle.write(str(total))


class FromDict(b2luigi.Task):
    def requires(self):
        return {"low": (Number(index=i) for i in range(2)), "high": (Number(index=i) for i in range(5, 6))}

    def output(self):
        yield self.add_to_output("dict.txt")

    def run(self):
        low = self.get_input_file_names_from_dict("low", "number.txt")
        high = self.get_input_file_names_from_dict("high")
        with open(self.get_output_file_name("dict.txt"), "w") as handle:
            handle.write(f"{len(low)} {high['number.txt']}")


def run(*tasks) -> None:
    assert process(list(tasks), argv=[], exit_on_failure=False)


def test_input_file_names_is_a_dict_of_lists(tmp_path: Path) -> None:
    task = Sum()
    names = task.get_input_file_names()
    assert set(names) == {"number.txt", "square.txt"}
    assert names["number.txt"] == [str(tmp_path / f"results/index={i}/number.txt") for i in range(3)]
    assert task.get_input_file_names("square.txt") == names["square.txt"]
    assert len(list(task.get_all_input_file_names())) == 6


def test_get_input_file_name_needs_exactly_one(tmp_path: Path) -> None:
    @b2luigi.requires(Number, index=4)
    class Single(b2luigi.Task):
        pass

    assert Single().get_input_file_name("number.txt") == str(tmp_path / "results/index=4/number.txt")
    with pytest.raises(ValueError, match="more than 1 input file"):
        Sum().get_input_file_name("number.txt")
    with pytest.raises(ValueError, match="more than 1 input file"):
        Single().get_input_file_name()


def test_get_input_file_name_without_key_for_one_file(tmp_path: Path) -> None:
    class OneOutput(b2luigi.Task):
        def output(self):
            yield self.add_to_output("only.txt")

    @b2luigi.requires(OneOutput)
    class UsesIt(b2luigi.Task):
        pass

    assert UsesIt().get_input_file_name() == str(tmp_path / "results/only.txt")


def test_run_with_inputs_and_dict_requirements(tmp_path: Path) -> None:
    run(Sum(), FromDict())
    assert (tmp_path / "results/sum.txt").read_text() == "3"
    low, high = (tmp_path / "results/dict.txt").read_text().split(" ", 1)
    assert low == "2" and "index=5/number.txt" in high


def test_output_key_error_names_the_key() -> None:
    with pytest.raises(KeyError):
        Number(index=1).get_output_file_name("nope.txt")


def test_remove_output_removes_files_and_folders(tmp_path: Path) -> None:
    run(Number(index=7))
    task = Number(index=7)
    assert task.complete()
    task.remove_output()
    assert not task.complete()
    assert not (tmp_path / "results/index=7/number.txt").exists()
    task.remove_output()  # nothing left: no error


def test_clone_keeps_shared_parameters() -> None:
    class Other(b2luigi.Task):
        index = b2luigi.IntParameter()
        extra = b2luigi.IntParameter(default=5)

    clone = Number(index=3).clone(Other)
    assert clone.index == 3 and clone.extra == 5


def test_inherits_without_and_clone_parent(tmp_path: Path) -> None:
    class Base(b2luigi.Task):
        a = b2luigi.IntParameter()
        b = b2luigi.IntParameter()

    @b2luigi.inherits(Base, without="b")
    class Child(b2luigi.Task):
        c = b2luigi.IntParameter(default=1)

    names = [name for name, _ in Child.get_params()]
    assert "a" in names and "b" not in names and "c" in names
    parent = Child(a=1).clone_parent(b=2)
    assert isinstance(parent, Base) and (parent.a, parent.b) == (1, 2)
    assert [p.b for p in Child(a=1).clone_parents(b=3)] == [3]


def test_requires_with_fixed_parameters() -> None:
    class A(b2luigi.Task):
        p = b2luigi.IntParameter()
        q = b2luigi.IntParameter()

    class B(b2luigi.Task):
        q = b2luigi.IntParameter()

    @b2luigi.requires(A, p=3)
    class One(b2luigi.Task):
        pass

    @b2luigi.requires(A, B, p=1)
    class Two(b2luigi.Task):
        pass

    assert [name for name, _ in One.get_params()] == ["q"]
    required = list(One(q=4).requires())
    assert required == [A(p=3, q=4)]
    both = list(Two(q=2).requires())
    assert both == [[A(p=1, q=2), B(q=2)]]


def test_copies_is_luigis() -> None:
    import luigi.util

    assert b2luigi.copies is luigi.util.copies


def test_luigi_style_output_still_works(tmp_path: Path) -> None:
    class Classic(b2luigi.Task):
        def output(self):
            return b2luigi.LocalTarget(str(tmp_path / "classic" / "c.txt"))

        def run(self):
            with self.output().open("w") as handle:
                handle.write("ok")

    run(Classic())
    assert (tmp_path / "classic/c.txt").read_text() == "ok"
    assert list(Classic().get_all_output_file_names()) == [str(tmp_path / "classic/c.txt")]
