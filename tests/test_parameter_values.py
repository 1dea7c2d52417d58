"""b2box computes a task's parameter values without luigi's configuration look-ups where luigi has no configuration
for the task; these tests hold it to luigi's answers (values, defaults, errors) and hand everything else to luigi."""

from __future__ import annotations

import datetime
import warnings

import luigi
import pytest
from luigi import configuration

import b2box as b2luigi
from b2box.api import parameter_values as module


class Shot(b2luigi.Task):
    energy = b2luigi.FloatParameter()
    runs = b2luigi.ListParameter(default=[1, 2])
    label = b2luigi.Parameter(default="beam")
    day = b2luigi.DateParameter(default=datetime.date(2026, 12, 6))
    flag = b2luigi.BoolParameter(default=False)


def luigis_answer(cls: type, args: tuple = (), kwargs: dict | None = None) -> list:
    return luigi.Task.get_param_values.__func__(cls, cls.get_params(), args, kwargs or {})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"energy": 10.58},
        {"energy": "4", "runs": [3, 4], "label": "cosmic", "day": datetime.date(2026, 1, 2), "flag": "true"},
        {"energy": 1, "runs": (5,)},
    ],
)
def test_the_values_are_luigis(kwargs: dict) -> None:
    assert Shot.get_param_values(Shot.get_params(), (), kwargs) == luigis_answer(Shot, (), kwargs)
    assert Shot(**kwargs).task_id == Shot(**kwargs).task_id  # the instance cache finds the same task


def test_the_errors_are_luigis() -> None:
    with pytest.raises(luigi.parameter.MissingParameterException, match="energy"):
        Shot()
    with pytest.raises(luigi.parameter.UnknownParameterException, match="voltage"):
        Shot(energy=1.0, voltage=3)
    assert next(value for _, value in Shot.get_param_values(Shot.get_params(), (2.0,), {})) == 2.0  # positional


def test_a_configured_family_is_left_to_luigi(monkeypatch: pytest.MonkeyPatch) -> None:
    config = configuration.get_config()
    config.add_section("Shot")
    config.set("Shot", "label", "from-config")
    config.set("Shot", "unused", "x")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = dict(Shot.get_param_values(Shot.get_params(), (), {"energy": 1.0}))
        assert values["label"] == "from-config"
        assert any("unused" in str(warning.message) for warning in caught)  # luigi's own warning, still given
    finally:
        config.remove_section("Shot")
    assert dict(Shot.get_param_values(Shot.get_params(), (), {"energy": 1.0}))["label"] == "beam"


def test_a_parameter_that_looks_its_value_up_its_own_way_is_left_to_luigi(monkeypatch: pytest.MonkeyPatch) -> None:
    class Looked(luigi.Parameter):
        def _value_iterator(self, task_name, param_name):  # type: ignore[no-untyped-def]
            yield ("looked-up", None)

    class Odd(b2luigi.Task):
        value = Looked(default="default")

    calls = []
    real = luigi.Task.get_param_values.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(luigi.Task, "get_param_values", classmethod(lambda cls, *a: calls.append(cls) or real(cls, *a)))
    assert Odd().value == "looked-up" and calls
    assert not module._default_is_final(Odd.get_params()[0][1])
