"""`import b2box as b2luigi` must give a b2luigi script every name it uses."""

from __future__ import annotations

import luigi
import pytest

import b2box as b2luigi

B2LUIGI_NAMES = [
    "Task",
    "ExternalTask",
    "WrapperTask",
    "requires",
    "inherits",
    "copies",
    "on_temporary_files",
    "dispatch",
    "DispatchableTask",
    "set_setting",
    "get_setting",
    "clear_setting",
    "process",
    "build",
    "BoolParameter",
    "BatchIntParameter",
    "LocalTarget",
]
TASK_METHODS = [
    "add_to_output",
    "get_output_file_name",
    "get_input_file_names",
    "get_input_file_name",
    "get_input_file_names_from_dict",
    "get_all_input_file_names",
    "get_all_output_file_names",
    "remove_output",
    "clone",
    "remove_log_files",
    "remove_task_files",
    "grouped_param_names",
    "has_grouped_params",
]


@pytest.mark.parametrize("name", luigi.__all__)
def test_every_luigi_name_is_exported(name: str) -> None:
    assert hasattr(b2luigi, name), f"luigi.{name} missing from b2box"


@pytest.mark.parametrize("name", B2LUIGI_NAMES)
def test_b2luigi_names(name: str) -> None:
    assert hasattr(b2luigi, name)


@pytest.mark.parametrize("name", TASK_METHODS)
def test_task_methods(name: str) -> None:
    assert callable(getattr(b2luigi.Task, name))


@pytest.mark.parametrize(
    "parameter_type",
    [name for name in luigi.__all__ if name.endswith("Parameter") and name != "Parameter"] + ["Parameter"],
)
def test_every_parameter_type_takes_b2luigi_options(parameter_type: str) -> None:
    cls = getattr(b2luigi, parameter_type)
    kwargs = {}
    if parameter_type in ("EnumParameter", "EnumListParameter"):
        import enum

        kwargs["enum"] = enum.Enum("Colour", "RED GREEN")
    if parameter_type in ("NumericalParameter", "OptionalNumericalParameter"):
        kwargs.update(var_type=int, min_value=0, max_value=10)
    if parameter_type == "ChoiceParameter":
        kwargs["choices"] = ["a", "b"]
    if parameter_type == "ChoiceListParameter":
        kwargs["choices"] = ["a", "b"]
    if parameter_type == "OptionalChoiceParameter":
        kwargs["choices"] = ["a", "b"]
    parameter = cls(hashed=True, **kwargs)
    assert parameter.serialize_hashed("x").startswith("hashed_")
    hidden = cls(hidden=True, **kwargs)
    assert hidden.hidden and not hasattr(hidden, "serialize_hashed")


def test_task_is_a_luigi_task() -> None:
    assert issubclass(b2luigi.Task, luigi.Task)
    assert issubclass(b2luigi.ExternalTask, luigi.ExternalTask)
    assert issubclass(b2luigi.WrapperTask, luigi.WrapperTask)


def test_build_warns_and_runs(tmp_path) -> None:
    class Touch(b2luigi.Task):
        def output(self):
            yield self.add_to_output("t.txt")

        def run(self):
            with open(self.get_output_file_name("t.txt"), "w") as handle:
                handle.write("x")

    with pytest.warns(UserWarning, match="process"):
        assert b2luigi.build([Touch()], local_scheduler=True, log_level="WARNING")
    assert (tmp_path / "results" / "t.txt").exists()
