"""Settings: lookup order, validation with named sources, no mutation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import b2box as b2luigi
from b2box.errors import DeprecatedSettingsWarning, SettingsError, SettingWarning
from b2box.settings import lookup as settings
from b2box.settings.resolved import settings_of


class Configured(b2luigi.Task):
    batch_system = "htcondor"

    @property
    def job_name(self):
        return f"job-{self.index}"

    index = b2luigi.IntParameter(default=1)


@pytest.fixture
def script_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project" / "analysis"
    folder.mkdir(parents=True)
    script = folder / "workflow.py"
    script.write_text("")
    monkeypatch.setenv("B2BOX_SCRIPT", str(script))
    settings.reload_settings()
    return folder


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    settings.reload_settings()
    return path


def test_order_task_then_set_setting_then_files_then_env_then_default(
    script_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b2luigi.clear_setting("result_dir")
    task = Configured()
    write(script_folder / "settings.json", {"batch_system": "slurm", "queue": "near", "workers": 3})
    write(script_folder.parent / "settings.json", {"queue": "far", "job_slots": 2, "workers": 5})
    monkeypatch.setenv("B2BOX_WORKERS", "7")
    monkeypatch.setenv("B2BOX_SHELL", "zsh")
    settings.reload_settings()
    assert b2luigi.get_setting("batch_system", task=task) == "htcondor"  # task attribute
    assert b2luigi.get_setting("job_name", task=task) == "job-1"  # task property
    assert b2luigi.get_setting("batch_system") == "slurm"  # nearest file
    assert b2luigi.get_setting("queue") == "near"  # nearest file wins over the parent's
    assert b2luigi.get_setting("job_slots") == 2  # parent file
    assert b2luigi.get_setting("shell") == "zsh"  # environment
    assert b2luigi.get_setting("result_dir") == "."  # model default
    assert b2luigi.get_setting("result_dir", default="x") == "x"  # caller's default first
    b2luigi.set_setting("batch_system", "lsf")
    assert b2luigi.get_setting("batch_system") == "lsf"  # set_setting beats files
    assert b2luigi.get_setting("batch_system", task=task) == "htcondor"  # task beats set_setting
    assert b2luigi.get_setting("workers") == 3  # file beats environment
    b2luigi.clear_setting("batch_system")
    assert b2luigi.get_setting("batch_system") == "slurm"


def test_named_file_replaces_the_search_as_in_b2luigi(script_folder: Path, tmp_path: Path, monkeypatch) -> None:
    named = write(tmp_path / "named.json", {"queue": "named"})
    write(script_folder / "settings.json", {"queue": "folder", "job_name": "from-folder"})
    for variable in ("B2BOX_SETTINGS", "B2LUIGI_SETTINGS_JSON"):
        monkeypatch.setenv(variable, str(named))
        settings.reload_settings()
        assert b2luigi.get_setting("queue") == "named"
        assert b2luigi.get_setting("job_name", default="unset") == "unset", "the folder's file is not read"
        assert list(b2luigi._setting_file_iterator()) == [str(named)]
        monkeypatch.delenv(variable)
    settings.reload_settings()
    assert b2luigi.get_setting("queue") == "folder"


def test_working_directory_files_count_after_the_scripts_folder(
    script_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b2luigi finds settings.json in the working directory and its parents; b2box beside the script: both."""
    elsewhere = tmp_path / "data" / "run1"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    in_cwd = write(elsewhere / "settings.json", {"my_key": "from cwd", "queue": "cwd"})
    beside = write(script_folder / "settings.json", {"queue": "script"})
    assert b2luigi.get_setting("my_key") == "from cwd"
    assert b2luigi.get_setting("queue") == "script", "the file nearer the script wins"
    assert settings.settings_sources() == [str(beside), str(in_cwd)]


def test_unknown_setting_without_default_raises_value_error() -> None:
    with pytest.raises(ValueError, match="No settings found for my_thing"):
        b2luigi.get_setting("my_thing")
    assert b2luigi.get_setting("my_thing", default=4) == 4


def test_custom_section_holds_own_settings(script_folder: Path) -> None:
    write(script_folder / "settings.json", {"custom": {"my_cut": 0.5}})
    assert b2luigi.get_setting("my_cut") == 0.5


def test_deprecated_key_is_read_with_warning(script_folder: Path) -> None:
    b2luigi.clear_setting("result_dir")
    write(script_folder / "settings.json", {"result_path": "old"})
    with pytest.warns(DeprecationWarning, match="result_path"):
        assert b2luigi.get_setting("result_dir", deprecated_keys=["result_path"]) == "old"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"workers": "four"}, r"settings.json: setting 'workers': .*integer.*'four'"),
        ({"batch_system": "pbs"}, r"setting 'batch_system': must be one of.*'pbs'"),
        ({"batch_system": "slrum"}, r"setting 'batch_system': must be one of.*\(got 'slrum'; did you mean 'slurm'\?\)"),
        (
            {"batch_system": "test"},
            r"must be one of: 'auto', 'local', 'lsf', 'htcondor', 'slurm', 'gbasf2', "
            r"'apptainer' or 'custom' \(got 'test'\)",
        ),
        ({"env": {"A": [1]}}, r"setting 'env'"),
        ([1, 2], r"must hold one JSON object"),
        ("{not json", r"not valid JSON \(line 1, column 2"),
    ],
)
def test_bad_settings_file_names_file_key_and_expectation(script_folder: Path, content, expected) -> None:
    path = write(script_folder / "settings.json", content)
    with pytest.raises(SettingsError, match=expected) as raised:
        settings.validate_settings()
    assert str(path) in str(raised.value)


def test_bad_named_file_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("B2BOX_SETTINGS", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match=r"missing\.json: settings file not found"):
        settings.validate_settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("B2BOX_WORKERS", "many", "B2BOX_WORKERS: .*integer.*'many'"),
        ("B2BOX_ENV", "{not json", "must be JSON"),
        ("B2BOX_BATCH_SYSTEM", "pbs", "B2BOX_BATCH_SYSTEM: must be one of"),
    ],
)
def test_bad_environment_variable(monkeypatch, variable: str, value: str, expected: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        settings.validate_settings()


def test_environment_values_are_typed(monkeypatch) -> None:
    monkeypatch.setenv("B2BOX_ENV", '{"A": "1"}')
    monkeypatch.setenv("B2BOX_APPTAINER_ADDITIONAL_PARAMS", "--nv --cleanenv")
    settings.reload_settings()
    assert b2luigi.get_setting("env") == {"A": "1"}
    assert b2luigi.get_setting("apptainer_additional_params") == ["--nv", "--cleanenv"]


def test_set_setting_with_wrong_type_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"set_setting\('workers', 'x'\)"):
        b2luigi.set_setting("workers", "x")
    b2luigi.set_setting("result_dir", Path("/tmp/somewhere"))  # paths are fine
    with pytest.warns(SettingWarning, match="my_own_value"):
        b2luigi.set_setting("my_own_value", object())  # own settings: a warning, their values are not checked


def test_own_top_level_keys_load_with_a_warning_naming_file_key_and_look_alike(script_folder: Path) -> None:
    path = write(script_folder / "settings.json", {"reslt_dir": "x", "my_cut": 0.5, "workers": 2})
    with pytest.warns(SettingWarning) as caught:
        settings.validate_settings()
    messages = [str(warning.message) for warning in caught]
    typo = next(message for message in messages if "'reslt_dir'" in message)
    assert typo.startswith(f"{path}: unknown setting 'reslt_dir' (did you mean 'result_dir'?)")
    assert "strict_settings" in typo
    assert any("'my_cut'" in message for message in messages)
    assert b2luigi.get_setting("my_cut") == 0.5 and b2luigi.get_setting("reslt_dir") == "x"


def test_b2luigi_keys_are_known_and_those_without_effect_say_so(script_folder: Path) -> None:
    write(
        script_folder / "settings.json",
        {"X509_USER_PROXY": "/tmp/x509up", "batch_status_cache_ttl": 30, "cmd_prefix": ["nice"]},
    )
    with pytest.warns(SettingWarning) as caught:
        settings.validate_settings()
    messages = [str(warning.message) for warning in caught]
    assert not [message for message in messages if "unknown setting" in message]
    assert [message for message in messages if "'batch_status_cache_ttl' has no effect in b2box" in message]
    assert not [message for message in messages if "X509_USER_PROXY" in message], "read by WebDAVSystem"
    with pytest.warns(DeprecatedSettingsWarning, match="cmd_prefix"):
        assert settings_of(Configured()).environment.executable_prefix == ("nice",)


@pytest.mark.parametrize("how", ["set_setting", "file", "environment", "flag"])
def test_strict_settings_make_unknown_keys_errors(script_folder: Path, monkeypatch, how: str) -> None:
    path = write(script_folder / "settings.json", {"reslt_dir": "x"})
    if how == "set_setting":
        b2luigi.set_setting("strict_settings", True)
    elif how == "file":
        write(path, {"reslt_dir": "x", "strict_settings": True})
    elif how == "environment":
        monkeypatch.setenv("B2BOX_STRICT_SETTINGS", "true")

    class Never(b2luigi.Task):
        def output(self):
            yield self.add_to_output("never.txt")

    if how == "flag":
        with pytest.raises(SystemExit) as raised:
            b2luigi.process(Never(), argv=["--strict-settings"])
        assert raised.value.code == 2
        return
    with pytest.raises(SettingsError, match=r"unknown setting 'reslt_dir' \(did you mean 'result_dir'\?\).*strict"):
        settings.validate_settings()


def test_unknown_set_setting_before_strictness_is_an_error_under_strict(script_folder: Path) -> None:
    with pytest.warns(SettingWarning, match=r"set_setting\('reslt_dir'\): unknown setting.*did you mean 'result_dir'"):
        b2luigi.set_setting("reslt_dir", "x")
    b2luigi.set_setting("strict_settings", True)
    with pytest.raises(SettingsError, match=r"set_setting\('reslt_dir'\)"):
        settings.validate_settings()


def test_unknown_environment_variable_gets_the_same_warning(monkeypatch) -> None:
    monkeypatch.setenv("B2BOX_RESLT_DIR", "x")
    monkeypatch.setenv("B2BOX_SCRIPT", "/nowhere/workflow.py")  # b2box's own plumbing: no warning
    with pytest.warns(SettingWarning) as caught:
        settings.validate_settings()
    messages = [str(warning.message) for warning in caught]
    assert messages == [
        "environment: unknown setting 'B2BOX_RESLT_DIR' (did you mean 'B2BOX_RESULT_DIR'?); b2box does not read it, "
        "get_setting('reslt_dir') does. Fix the name, or put settings of your own under \"custom\"; "
        "strict_settings = true (or --strict-settings) makes this an error."
    ]


def test_a_job_reads_the_settings_its_submitter_read(script_folder: Path) -> None:
    path = write(script_folder / "settings.json", {"my_greeting": "as submitted"})
    with pytest.warns(SettingWarning):
        submitted = settings.settings_files()
    write(path, {"my_greeting": "changed since"})
    try:
        settings.pin_settings_files(submitted)
        assert b2luigi.get_setting("my_greeting") == "as submitted"
    finally:
        settings._pinned_files = None
        settings.reload_settings()
    assert b2luigi.get_setting("my_greeting") == "changed since", "a new run reads the file again"


def test_b2luigi_names_are_exported() -> None:
    patched = b2luigi.Parameter.__init__
    b2luigi.wrap_parameter()  # already applied on import: calling it again changes nothing
    assert b2luigi.Parameter.__init__ is patched
    b2luigi.IntParameter(hashed=True, grouping=False, hidden=True)  # b2luigi's options are accepted
    assert issubclass(b2luigi.DeprecatedSettingsWarning, DeprecationWarning)
    assert list(b2luigi._setting_file_iterator()) == settings.settings_sources()


def test_set_setting_values_are_never_mutated() -> None:
    original = {"request_memory": "2 GB"}
    b2luigi.set_setting("htcondor_settings", original)
    handed_out = b2luigi.get_setting("htcondor_settings")
    handed_out["JobBatchName"] = "leak"
    assert original == {"request_memory": "2 GB"}
    assert b2luigi.get_setting("htcondor_settings") == {"request_memory": "2 GB"}


def test_settings_file_errors_stop_process_before_any_task(script_folder: Path, tmp_path: Path) -> None:
    ran = []

    class Never(b2luigi.Task):
        def output(self):
            yield self.add_to_output("never.txt")

        def run(self):
            ran.append(True)

    write(script_folder / "settings.json", {"workers": "x"})
    with pytest.raises(SystemExit) as raised:
        b2luigi.process(Never(), argv=[])
    assert raised.value.code == 2 and not ran


class PerSample(b2luigi.Task):
    sample = b2luigi.Parameter()

    @property
    def result_dir(self):
        return f"results/{self.sample}"


class Plain(b2luigi.Task):
    index = b2luigi.IntParameter()


def test_folders_are_shared_by_a_class_yet_follow_a_property_the_script_and_set_setting(
    script_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b2luigi.clear_setting("result_dir")
    assert settings_of(PerSample(sample="a")).folders.result_dir == str(script_folder / "results" / "a")
    assert settings_of(PerSample(sample="b")).folders.result_dir == str(script_folder / "results" / "b")
    first, second = Plain(index=1), Plain(index=2)
    assert settings_of(first).folders is settings_of(second).folders  # one resolution for the class
    assert settings_of(first).folders.result_dir == os.path.join(script_folder, ".")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "workflow.py").write_text("")
    monkeypatch.setenv("B2BOX_SCRIPT", str(other / "workflow.py"))
    assert settings_of(Plain(index=3)).folders.result_dir == os.path.join(other, ".")  # asked first now: the new script
    b2luigi.set_setting("result_dir", "out")
    try:
        assert settings_of(first).folders.result_dir == str(other / "out")
    finally:
        b2luigi.clear_setting("result_dir")
