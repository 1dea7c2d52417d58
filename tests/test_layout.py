"""Outputs land exactly where b2luigi puts them, so existing results count as complete."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import b2box as b2luigi


class Plain(b2luigi.Task):
    energy = b2luigi.FloatParameter()
    label = b2luigi.Parameter()

    def output(self):
        yield self.add_to_output("out.root")


class WithHashed(b2luigi.Task):
    cuts = b2luigi.ListParameter(hashed=True)

    def output(self):
        yield self.add_to_output("out.txt")


class WithCustomHash(b2luigi.Task):
    cuts = b2luigi.ListParameter(hashed=True, hash_function=lambda value: "n" + str(len(value)))

    def output(self):
        yield self.add_to_output("out.txt")


class WithHidden(b2luigi.Task):
    visible = b2luigi.IntParameter()
    secret = b2luigi.IntParameter(hidden=True)
    insignificant = b2luigi.IntParameter(significant=False, default=0)

    def output(self):
        yield self.add_to_output("out.txt")


class Grouped(b2luigi.Task):
    plain = b2luigi.IntParameter(default=0)
    grouped = b2luigi.BatchIntParameter(default=0, grouping=True)
    max_grouping_size = 10

    def output(self):
        yield self.add_to_output("grouped.txt")


def test_parameters_become_folders(tmp_path: Path) -> None:
    task = Plain(energy=10.58, label="mc")
    assert task.get_output_file_name("out.root") == str(tmp_path / "results/energy=10.58/label=mc/out.root")
    assert list(task.get_all_output_file_names()) == [str(tmp_path / "results/energy=10.58/label=mc/out.root")]


def test_hashed_parameter_is_md5_of_str(tmp_path: Path) -> None:
    task = WithHashed(cuts=[1, 2])
    digest = hashlib.md5(str(task.cuts).encode()).hexdigest()
    assert task.get_output_file_name("out.txt") == str(tmp_path / f"results/cuts=hashed_{digest}/out.txt")


def test_custom_hash_function(tmp_path: Path) -> None:
    assert WithCustomHash(cuts=[1, 2, 3]).get_output_file_name("out.txt") == str(tmp_path / "results/cuts=n3/out.txt")


def test_custom_hash_function_must_take_one_argument() -> None:
    with pytest.raises(ValueError, match="exactly one argument"):
        b2luigi.Parameter(hashed=True, hash_function=lambda a, b: "x")


def test_hidden_and_insignificant_parameters_are_left_out(tmp_path: Path) -> None:
    task = WithHidden(visible=1, secret=2)
    assert task.get_output_file_name("out.txt") == str(tmp_path / "results/visible=1/out.txt")


def test_hidden_false_with_insignificant_is_refused() -> None:
    with pytest.raises(ValueError, match="hidden=False"):
        b2luigi.Parameter(significant=False, hidden=False)


def test_grouped_parameter_names(tmp_path: Path) -> None:
    assert Grouped.grouped_param_names() == ["grouped"]
    assert Grouped.has_grouped_params() and not Plain.has_grouped_params()
    assert Grouped.max_batch_size == 10
    assert Grouped(plain=1, grouped=3).get_output_file_name("grouped.txt") == str(
        tmp_path / "results/plain=1/grouped=3/grouped.txt"
    )
    group = Grouped(plain=1, grouped=(0, 1, 2))
    assert "grouped=grouped_0_1_2" in group.get_output_file_name("grouped.txt")


def test_separator_and_names_settings(tmp_path: Path) -> None:
    b2luigi.set_setting("parameter_separator", "-")
    assert "energy-1.0" in Plain(energy=1.0, label="a").get_output_file_name("out.root")
    b2luigi.set_setting("use_parameter_name_in_output", False)
    assert Plain(energy=1.0, label="a").get_output_file_name("out.root") == str(tmp_path / "results/1.0/a/out.root")


def test_slash_in_value_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="hashed=True"):
        Plain(energy=1.0, label="a/b").get_output_file_name("out.root")


def test_relative_result_dir_is_relative_to_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "project" / "workflow.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setenv("B2BOX_SCRIPT", str(script))
    b2luigi.set_setting("result_dir", "out")
    assert Plain(energy=1.0, label="a").get_output_file_name("out.root") == str(
        tmp_path / "project/out/energy=1.0/label=a/out.root"
    )


def test_result_dir_argument_of_add_to_output(tmp_path: Path) -> None:
    class Elsewhere(b2luigi.Task):
        def output(self):
            yield self.add_to_output("x.txt", result_dir=str(tmp_path / "other"))

    assert Elsewhere().get_output_file_name("x.txt") == str(tmp_path / "other/x.txt")


def test_log_and_task_file_dirs(tmp_path: Path) -> None:
    from b2box.settings.layout import get_log_file_dir, get_task_file_dir

    task = WithHidden(visible=1, secret=2)
    assert get_log_file_dir(task) == f"{tmp_path}/logs/visible=1/WithHidden/"
    b2luigi.set_setting("task_file_dir", str(tmp_path / "tf"))
    assert get_task_file_dir(task) == f"{tmp_path}/tf/visible=1/secret=2/WithHidden/"
