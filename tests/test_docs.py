"""The documentation site (docs/): it builds without warnings, its generated references are complete, and every
example it shows runs here as the page shows it.

Pages show code only through ``literalinclude`` of files under docs/examples (and CI's pipeline template); each
such file is listed in SHOWN with the test that runs it, and a page showing anything else fails
test_pages_show_only_code_that_tests_run.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from b2box.cli.app import main as cli_main
from b2box.settings.model import settings_model
from tests.conftest import REPO
from tests.test_gbasf2 import STANDINS, Grid
from tests.testbed_plugin import testbed

DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
VENV_BIN = Path(sys.executable).parent  # where `b2box` is installed next to this Python

# Every file a page shows, and the test here that runs it.
SHOWN = {
    "examples/install.sh": "test_install_commands_on_a_machine_without_b2box",
    "examples/getting-started.sh": "test_getting_started_runs_as_written",
    "examples/testbed.sh": "test_testbed_commands_run",
    "examples/settings/docker.json": "test_docker_settings_file",
    "examples/settings/env-script.json": "test_env_script_settings_file",
    "examples/settings/setup.sh": "test_env_script_settings_file",
    "examples/settings/rerun-when.json": "test_rerun_when_settings_file",
    "examples/settings/apptainer.json": "test_apptainer_settings_file_on_htcondor",
    "examples/settings/lsf.json": "test_lsf_settings_file_against_the_lsf_standin",
    "examples/settings/gbasf2.json": "test_grid_workflow_against_the_gbasf2_standin",
    "examples/grid_workflow.py": "test_grid_workflow_against_the_gbasf2_standin",
    "examples/show_environment.py": "test_docker_settings_file",
    "examples/images/tiny/Dockerfile": "tests/test_build_env_apptainer.py::"
    "test_dockerfile_builds_into_a_sif_without_docker_and_runs_locally_on_htcondor_and_slurm",
    "examples/images/tiny/greeting.txt": "tests/test_build_env_apptainer.py::"
    "test_dockerfile_builds_into_a_sif_without_docker_and_runs_locally_on_htcondor_and_slurm",
    "examples/in_tiny.py": "tests/test_build_env_apptainer.py::"
    "test_dockerfile_builds_into_a_sif_without_docker_and_runs_locally_on_htcondor_and_slurm",
    "../examples/average/workflow.py": "tests/test_example.py::test_main_example_reruns_only_what_was_deleted",
    "../ci/pipelines/gitlab-ci.yml": "tests/test_image.py::test_pipeline_commands_run_in_the_image",
}
# Blocks that show no code of their own: generated references, the table of contents, diagrams (text).
NO_CODE = {"toctree", "eval-rst", "b2box-settings", "b2box-errors"}


# ------------------------------------------------------------------------------------------------ the build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as CI builds it: from scratch, every warning an error."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, f"the docs do not build cleanly:\n{built.stderr}"
    return out


def test_the_docs_build_without_warnings(site: Path) -> None:
    pages = {path.relative_to(site).as_posix() for path in site.rglob("*.html")}
    toctree = re.findall(r"^\w[\w/-]*$", (DOCS / "index.md").read_text(), re.MULTILINE)
    assert {f"{name}.html" for name in toctree} <= pages
    sources = {path.relative_to(DOCS).with_suffix(".html").as_posix() for path in DOCS.rglob("*.md")}
    assert sources - {f"examples/{path.name}" for path in EXAMPLES.rglob("*.md")} <= pages


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_every_setting_of_the_model_is_in_the_generated_reference(site: Path) -> None:
    page = (site / "reference" / "settings.html").read_text()
    entries = re.findall(r"<dt>(.*?)</dt>\s*<dd>(.*?)</dd>", page, re.DOTALL)
    names = [_text(term) for term, _ in entries]
    assert sorted(names) == sorted(settings_model().model_fields), "the reference lists exactly the model's settings"
    for (_, body), name in zip(entries, names, strict=True):
        text = _text(body)
        assert text.startswith("type ") and ", default " in text, f"{name}: type and default shown: {text[:80]}"
        described = (settings_model().model_fields[name].description or "").replace("``", "")
        assert described and " ".join(described.split()[:4]) in " ".join(text.split()), f"{name}: its docstring"
        assert f'id="{name.replace("_", "-").lower()}"' in page, f"{name} can be linked to"


def _commands(group: click.Group, prefix: str = "b2box") -> list[str]:
    found = []
    for name, command in group.commands.items():
        found.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


def test_every_command_and_option_is_in_the_cli_reference(site: Path) -> None:
    page = _text((site / "reference" / "cli.html").read_text())
    assert isinstance(cli_main, click.Group)
    for command in _commands(cli_main):
        assert command in page, f"{command} missing from the CLI reference"
    run = cli_main.commands["run"]
    for option in (opt for param in run.params for opt in getattr(param, "opts", []) if opt.startswith("--")):
        assert option in page, f"b2box run {option} missing from the CLI reference"


def _catalog(site: Path) -> list[re.Pattern[str]]:
    """Each message of the troubleshooting page as a pattern: ``{...}`` (a filled-in value) matches anything."""
    page = (site / "troubleshooting.html").read_text()
    patterns = []
    for item in re.findall(r"<li><p><code[^>]*>.*?</code>: (.*?)</p></li>", page, re.DOTALL):
        text = " ".join(_text(item).split())
        pieces = re.split(r"\{(?:[^{}]|\{[^{}]*\})*\}", text)
        if len(pieces) > 1 and not pieces[0]:
            pieces[1] = pieces[1].removeprefix(": ")  # "{task}: ..." is told once for many tasks, without the task
        patterns.append(re.compile(".*?".join(re.escape(piece) for piece in pieces), re.DOTALL))
    return patterns


BAD_SETTINGS = [
    ('{"workers": "many"}', []),
    ('{"workers": ', []),
    ('{"batch_system": "test"}', ["--batch"]),
    ('{"image": "missing.sif"}', []),
    ('{"env_script": "missing.sh"}', []),
    ('{"reslt_dir": "out", "strict_settings": true}', []),
]


@pytest.mark.parametrize(("settings", "flags"), BAD_SETTINGS)
def test_errors_users_meet_are_in_the_troubleshooting_catalog(
    site: Path, tmp_path: Path, settings: str, flags: list[str]
) -> None:
    shutil.copy(EXAMPLES / "show_environment.py", tmp_path / "workflow.py")
    (tmp_path / "settings.json").write_text(settings)
    failed = subprocess.run([str(VENV_BIN / "b2box"), "run", "workflow.py", *flags], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=_user_env())  # fmt: skip
    assert failed.returncode == 2, failed.stderr
    message = " ".join(failed.stderr.strip().splitlines()[-1].removeprefix("b2box: error: ").split())
    assert any(pattern.search(message) for pattern in _catalog(site)), f"not in the catalog: {message}"


def test_task_failures_the_troubleshooting_page_explains_are_b2box_messages() -> None:
    """Each row of its table quotes a failure message; a message reworded in the code must be reworded there."""
    page = (DOCS / "troubleshooting.md").read_text()
    table = page[page.index("(task-failures)=") : page.index("## When a run stops")]
    quoted = re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE)
    assert len(quoted) >= 8
    code = " ".join(path.read_text() for path in (REPO / "b2box").rglob("*.py"))
    for fragment in quoted:
        assert fragment in code, f"troubleshooting.md quotes '{fragment}', which b2box never says"


def test_pages_show_only_code_that_tests_run() -> None:
    shown = set()
    for page in sorted(DOCS.rglob("*.md")):
        opening = None
        for line in page.read_text().splitlines():
            fence = re.match(r"^(`{3,}|:{3,})[ \t]*(\S*)[ \t]*(.*)$", line)
            if not fence:
                continue
            if opening is not None and fence[1] == opening and not fence[2]:
                opening = None  # the closing fence
                continue
            opening, name, argument = fence[1], fence[2].strip("{}"), fence[3].strip()
            assert name in NO_CODE | {"literalinclude", "text"}, f"{page.name}: code shown inline: {line}"
            if name == "literalinclude":
                shown.add(os.path.relpath((page.parent / argument).resolve(), DOCS))
    assert shown == set(SHOWN), "every file a page shows has a test that runs it (SHOWN)"
    for test in SHOWN.values():
        module, _, name = test.rpartition("::")
        source = (REPO / module).read_text() if module else Path(__file__).read_text()
        assert f"def {name}(" in source, f"{test} (named in SHOWN) does not exist"


# ------------------------------------------------------------------------------------------------ the examples


def _user_env(**extra: str) -> dict[str, str]:
    """A user's shell: b2box on PATH from its virtual environment, no test settings, no stand-ins."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("B2BOX_", "B2LUIGI_"))}
    env["PATH"] = f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("results/index=*/environment.json"))]


def _project(folder: Path, settings: str, script: str = "show_environment.py") -> Path:
    shutil.copy(EXAMPLES / script, folder / script)
    shutil.copy(EXAMPLES / "settings" / settings, folder / "settings.json")
    return folder / script


@pytest.mark.docker
def test_getting_started_runs_as_written(tmp_path: Path, analysis_image: str) -> None:
    done = subprocess.run(["bash", str(EXAMPLES / "getting-started.sh")], cwd=tmp_path, env=_user_env(),
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    project = tmp_path / "analysis"
    records = [json.loads(path.read_text()) for path in project.glob("logs/**/provenance.json")]
    assert records and all(record["image"]["runtime"] == "docker" for record in records), "the last runs in the image"
    assert {record["backend"] for record in records} == {"local"}, "--batch ran local jobs on this laptop-like host"
    assert analysis_image in done.stdout, "b2box provenance named the image"


def _readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## A short example") :]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL)[1]  # type: ignore[index]


@pytest.mark.docker
def test_readme_example_runs_here_in_a_container_and_as_batch_jobs(tmp_path: Path, analysis_image: str) -> None:
    (tmp_path / "workflow.py").write_text(_readme_example())
    b2box = str(VENV_BIN / "b2box")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([b2box, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env=_user_env(), stdin=subprocess.DEVNULL)  # fmt: skip
        assert done.returncode == 0, f"b2box {' '.join(args)}: {done.stderr[-3000:]}"
        return done

    def merged() -> str:
        return (tmp_path / "results" / "all.txt").read_text()

    def runtimes() -> set[tuple[str, str]]:
        records = [json.loads(path.read_text()) for path in tmp_path.glob("logs/**/Simulate/provenance.json")]
        return {(record["image"]["runtime"], record["backend"]) for record in records}

    run("run", "workflow.py")
    assert merged() == "".join(f"events of run {number}\n" for number in range(3))
    assert (tmp_path / "results/run_number=2/events.txt").exists()
    (tmp_path / "settings.json").write_text(json.dumps({"image": "python:3.11-slim-bookworm"}))
    run("remove", "workflow.py", "Simulate", "--yes")
    run("run", "workflow.py")
    assert runtimes() == {("docker", "local")}
    run("remove", "workflow.py", "Simulate", "--yes")
    run("run", "workflow.py", "--batch")
    assert runtimes() == {("docker", "local")} and merged().count("events of run") == 3
    records = [json.loads(path.read_text()) for path in tmp_path.glob("logs/**/Simulate/provenance.json")]
    assert all(record.get("job_id") for record in records), "each task was a batch job (local batch system)"


@pytest.mark.docker
def test_docker_settings_file(tmp_path: Path, analysis_image: str) -> None:
    script = _project(tmp_path, "docker.json")
    done = subprocess.run([str(VENV_BIN / "b2box"), "run", script.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=_user_env(ANALYSIS_CONFIG="tight-cuts"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = _records(tmp_path)
    assert len(records) == 2
    for record in records:
        assert record["python"].startswith("3.11."), "ran in python:3.11-slim-bookworm, not this host's Python"
        assert record["threads"] == "1" and record["config"] == "tight-cuts", "env set, pass_env handed over"


def test_env_script_settings_file(tmp_path: Path) -> None:
    script = _project(tmp_path, "env-script.json")
    shutil.copy(EXAMPLES / "settings" / "setup.sh", tmp_path / "setup.sh")
    done = subprocess.run([str(VENV_BIN / "b2box"), "run", script.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=_user_env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [(record["setup"], record["mode"]) for record in _records(tmp_path)] == [("done by setup.sh", "full")] * 2


def test_rerun_when_settings_file(tmp_path: Path) -> None:
    """docs/results.md: an env_script edit and a code edit each run the results again, as the page shows."""
    script = _project(tmp_path, "rerun-when.json")
    shutil.copy(EXAMPLES / "settings" / "setup.sh", tmp_path / "setup.sh")

    def b2box(*args: str) -> str:
        done = subprocess.run([str(VENV_BIN / "b2box"), *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, env=_user_env())  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    b2box("run", script.name)
    with open(tmp_path / "setup.sh", "a") as setup:
        setup.write("export ANALYSIS_MODE=fast\n")
    shown = _block_after(DOCS / "results.md", "(status-why)=")
    status = b2box("status", script.name, "--why")
    assert [line.split() for line in status.splitlines()] == [line.split() for line in shown.splitlines()]
    assert "(2 made again: stale, b2box status --why says why)" in b2box("run", script.name)
    assert [record["mode"] for record in _records(tmp_path)] == ["fast", "fast"]
    script.write_text(script.read_text().replace('"mode": os.environ.get(', '"mode": "mode " + os.environ.get('))
    assert "Record's code changed: run again: Record(index=0) and 1 more" in b2box("status", script.name, "--why")
    b2box("run", script.name)
    assert [record["mode"] for record in _records(tmp_path)] == ["mode fast", "mode fast"]
    made = b2box("provenance", "results/index=0/environment.json")
    assert "made by      Record(index=0)" in made and "environment  the host (no container)" in made


def _block_after(page: Path, label: str) -> str:
    """The first fenced block after ``label`` in ``page``."""
    text = page.read_text()
    rest = text[text.index(label) :]
    start = rest.index("```text\n") + len("```text\n")
    return rest[start : rest.index("```", start)]


@pytest.mark.htcondor
@pytest.mark.apptainer
def test_apptainer_settings_file_on_htcondor(worker: Any, shared_tmp: Path, analysis_sif: str) -> None:
    script = _project(shared_tmp, "apptainer.json")
    shutil.copy(analysis_sif, shared_tmp / "analysis.sif")
    python = worker.install_b2box()
    worker.run([python, script.name, "--batch"], cwd=shared_tmp, timeout=600)
    records = _records(shared_tmp)
    assert len(records) == 2 and all(record["python"].startswith("3.11.") for record in records)
    provenance = json.loads((shared_tmp / "logs/index=0/Record/provenance.json").read_text())
    assert provenance["backend"] == "htcondor" and provenance["image"]["runtime"] == "apptainer"
    assert provenance["image"]["reference"] == str(shared_tmp / "analysis.sif"), "a relative SIF: the script's folder"


def test_lsf_settings_file_against_the_lsf_standin(tmp_path: Path) -> None:
    """LSF cannot be installed here: the stand-in's bsub/bjobs (tests/standins/lsf) run the jobs with bash."""
    script = _project(tmp_path, "lsf.json")
    state = tmp_path / "lsf-state"
    state.mkdir()
    (state / "config.json").write_text(json.dumps({"queue_delay": 0.1, "queues": ["s", "l"], "default_queue": "l"}))
    env = _user_env(LSF_STANDIN_DIR=str(state))
    env["PATH"] = f"{STANDINS / 'lsf' / 'bin'}:{env['PATH']}"
    done = subprocess.run([str(VENV_BIN / "b2box"), "run", script.name, "--batch"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(_records(tmp_path)) == 2
    arrays = [json.loads(path.read_text()) for path in sorted((state / "jobs").glob("*.json"))]
    assert arrays and all(array["queue"] == "s" for array in arrays)
    options = arrays[0]["options"]
    assert (options["-n"], options["-R"], options["-W"], options["-P"]) == ("1", "rusage[mem=4000]", "2:00", "belle")


def test_grid_workflow_against_the_gbasf2_standin(tmp_path: Path) -> None:
    """gbasf2 and basf2 cannot be installed here: their stand-ins (tests/standins) run the grid jobs. Only the
    setup path differs from the page: /cvmfs does not exist here, so it names the stand-in's bashrc."""
    grid = Grid(tmp_path)
    settings = json.loads((EXAMPLES / "settings" / "gbasf2.json").read_text())
    grid.add_dataset(settings["gbasf2_input_dataset"], [7, 7])
    project = tmp_path / "analysis"
    project.mkdir()
    script = _project(project, "gbasf2.json", "grid_workflow.py")
    settings.update(gbasf2_setup_path=str(grid.setup), gbasf2_status_interval=0.3, batch_poll_interval=0.1)
    (project / "settings.json").write_text(json.dumps(settings))
    setup = STANDINS / "basf2" / "setup_release.sh"  # the user's basf2 setup (b2setup) before the run
    done = subprocess.run(["bash", "-c", f'source "{setup}" && b2box run {script.name} --batch'], cwd=project,
                          capture_output=True, text=True, timeout=300, env=_user_env())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert grid.calls()["gbasf2"] == 1, "one project"
    (name,) = grid.projects()
    assert name.startswith("myana")
    merged = json.loads((project / "results" / "ntuple.root").read_text())
    assert merged["events"] == 14, "both files of the dataset, processed on the grid, downloaded and merged here"


@pytest.mark.apptainer
def test_install_commands_on_a_machine_without_b2box(worker: Any, shared_tmp: Path) -> None:
    """The worker node has no network and no b2box: pip installs from the wheelhouse made for it, as a site
    mirror would serve, and /path/to/b2box is a copy of this repository's package files."""
    clone = shared_tmp / "b2box"
    testbed.copy_package_files(REPO, clone, worker)
    project = shared_tmp / "project"
    project.mkdir()
    if os.geteuid() == 0:
        os.chown(project, worker.uid, worker.gid)
    commands = (EXAMPLES / "install.sh").read_text().replace("/path/to/b2box", str(clone))
    wheelhouse = testbed.worker_wheelhouse(worker, testbed.project_requirements(REPO, ()))
    done = worker.run(["bash", "-c", commands], cwd=project, timeout=600,
                      env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)})  # fmt: skip
    assert re.search(r"b2box, version \d", done.stdout), done.stdout
    assert (project / ".venv" / "bin" / "b2box").exists()


@pytest.mark.htcondor
@pytest.mark.slurm
def test_testbed_commands_run() -> None:
    """docs/contributing.md: bringing the testbed up again changes nothing and status says it is up."""
    done = subprocess.run(["bash", str(EXAMPLES / "testbed.sh")], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
