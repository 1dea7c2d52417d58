"""The ``b2box`` command.

``b2box run script.py`` runs a workflow script exactly as ``python script.py``
would, with the flags turned into the script's own (``--batch``,
``--dry-run`` ...), so a script behaves the same either way. Errors a user
can fix are printed as one line that says what to do.
"""

from __future__ import annotations

import os
import platform
import runpy
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from importlib import resources
from typing import Any, NoReturn

import click
from click.shell_completion import get_completion_class

from b2box import b2luigi_names
from b2box.cli import flags
from b2box.cli import process as entrypoint
from b2box.cli.script_errors import script_error
from b2box.errors import B2BoxError

EXIT_USAGE = 2


def _error(message: str) -> NoReturn:
    click.echo(f"b2box: error: {message}", err=True)
    raise SystemExit(EXIT_USAGE)


def run_script(script: str, flags: Sequence[str]) -> None:
    """Execute ``script`` as ``__main__`` with ``flags`` as its command line; exit with its status."""
    path = os.path.abspath(script)
    if not os.path.isfile(path):
        _error(f"{script}: no such workflow script. Give the path of a .py file that calls b2box.process().")
    os.environ["B2BOX_SCRIPT"] = path
    b2luigi_names.install()  # an unmodified b2luigi script: its `import b2luigi` is b2box
    sys.argv = [path, *flags]
    sys.path.insert(0, os.path.dirname(path))
    calls_before = entrypoint.calls
    try:
        runpy.run_path(path, run_name="__main__")
    except B2BoxError as error:
        _error(str(error))
    except Exception as error:  # the script itself is broken: not a failed task (exit 1), a usage error (exit 2)
        if entrypoint.calls != calls_before:
            raise  # raised while its workflow ran: process() says what (the traceback of a bug stays whole)
        if "--verbose" in flags:
            traceback.print_exc()
        _error(script_error(error, path))
    if entrypoint.calls == calls_before:
        _error(
            f"{script} never called b2box.process(). End it with\n"
            "    if __name__ == '__main__':\n        b2box.process(MyTask())"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(package_name="b2box", prog_name="b2box")
@click.pass_context
def main(context: click.Context) -> None:
    """Run b2luigi-style workflows the same way on a laptop, batch farms, the grid and CI."""
    if context.invoked_subcommand is None:  # a bare `b2box` asks what it can do: the help, and no error
        click.echo(context.get_help())


_SCRIPT = click.argument("script", type=click.Path(dir_okay=False))
_SCRIPT_ARGS = click.argument("script_args", nargs=-1, type=click.UNPROCESSED)


@main.command(context_settings={"ignore_unknown_options": True})
@_SCRIPT
@flags.click_options
@_SCRIPT_ARGS
def run(script: str, script_args: tuple[str, ...], **values: Any) -> None:
    """Run the workflow SCRIPT with the flags below (the same as `python SCRIPT --help` lists). Other arguments are
    passed to the script: --name VALUE sets a parameter of the task it runs (or of --task FAMILY)."""
    run_script(script, [*flags.as_script_flags(values), *script_args])


@main.command()
@_SCRIPT
@click.option("--tree", is_flag=True, help="The task graph as a text tree (large families collapsed).")
@click.option("--why", is_flag=True, help="Per family, why results are stale (what changed) and whether they rerun.")
@_SCRIPT_ARGS
def status(script: str, tree: bool, why: bool, script_args: tuple[str, ...]) -> None:
    """Show how many tasks of each family are complete, stale, failed and pending, for the whole tree of SCRIPT."""
    run_script(script, ["--status", *(["--tree"] if tree else []), *(["--why"] if why else []), *script_args])


@main.command()
@_SCRIPT
@click.option(
    "-o",
    "--output",
    default="workflow.svg",
    show_default=True,
    help="The picture's file: .svg, .html (self-contained) or .dot (for Graphviz).",
)
@_SCRIPT_ARGS
def graph(script: str, output: str, script_args: tuple[str, ...]) -> None:
    """Draw the task graph of SCRIPT, each task coloured by its state (large parameter families collapsed)."""
    run_script(script, ["--graph", os.path.abspath(output), *script_args])


@main.command()
@_SCRIPT
@click.option("-o", "--output", default="report.html", show_default=True, help="The page's file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report's figures as JSON instead of the page.")
@_SCRIPT_ARGS
def report(script: str, output: str, as_json: bool, script_args: tuple[str, ...]) -> None:
    """Write the report of SCRIPT's last run: one self-contained HTML page (a timeline of every job, run time and
    peak memory per task family against its request, the slowest and largest jobs, failures by cause with their
    logs' tails, the environments and the task graph), or its figures as JSON."""
    run_script(script, ["--report", os.path.abspath(output), *(["--json"] if as_json else []), *script_args])


@main.command()
@_SCRIPT
@_SCRIPT_ARGS
def show(script: str, script_args: tuple[str, ...]) -> None:
    """List every output of SCRIPT's workflow and whether it exists."""
    run_script(script, ["--show-output", *script_args])


def _docker_for_build(need: bool) -> Any:
    """The Docker engine to build with; with ``--apptainer`` alone, None where there is none (SIF from a saved
    image)."""
    from b2box.env.docker import _client

    try:
        return _client()
    except B2BoxError:
        if need:
            raise
        return None


def _build_one(
    root: Any, definition: Any, lock: dict[str, Any], client: Any, apptainer: bool, pending: list[str]
) -> Any:
    """One environment's lock entry: the Docker image (and its SIF) where Docker is; without Docker, the SIF of the
    saved image (identical content) when there is one, else the SIF built from the definition by Apptainer."""
    from b2box.env import apptainer_build, build

    old = lock.get(definition.name)
    say = lambda line: click.echo(f"b2box: {line}", err=True)  # noqa: E731 - (each step as it starts)
    if client is None and apptainer:
        digest = build.definition_hash(definition)
        same = dict(old) if old and old.get("definition") == digest else {}
        kept = build.kept_sif(same, {"definition": digest})
        from_docker = kept.get("sif_from", "docker-archive") == "docker-archive" if kept else False
        if not from_docker and not (same and build.saved_archive(root, definition.name, same).exists()):
            found = apptainer_build.build_from_definition(root, definition, say)
            without_sif = {key: value for key, value in same.items() if "sif" not in key and "apptainer" not in key}
            return {**without_sif, "definition": digest, **found}
    entry = build.build(definition, client, say) if client else build.locked_entry(root, definition, lock)
    entry.update(build.kept_sif(old, entry))
    if apptainer:
        try:
            made = build.build_sif(root, definition.name, entry, client)
            for key in ("apptainer_definition", "apptainer_definition_sha256", "apptainer_definition_source"):
                entry.pop(key, None)  # the SIF of the Docker image replaces one built from the definition
            entry.update(made)
        except build.SifPending as waiting:
            pending.append(str(waiting))
    return entry


@main.command(name="build-env")
@click.argument("names", nargs=-1)
@click.option(
    "--apptainer",
    is_flag=True,
    help="Also build a SIF of each image. Without Apptainer here, the image is saved for a second run "
    "where Apptainer is (exit 3); without Docker, that saved image is used, or, when there is none, the SIF is "
    "built by Apptainer from images/NAME/apptainer.def or the Dockerfile converted with spython.",
)
@click.option("--check", is_flag=True, help="Only tell whether b2box.lock matches the definitions (exit 1 if not).")
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    default=".",
    help="Folder with images/ (default: the nearest above the current one).",
)
def build_env(names: tuple[str, ...], apptainer: bool, check: bool, project: str) -> None:
    """Build the environments in images/ (all, or NAMES) with b2box inside, and lock their digests."""
    from b2box.env import build

    try:
        root = build.find_project(project)
        if check:
            problems = build.check(root, list(names))
            for problem in problems:
                click.echo(f"b2box: {problem}", err=True)
            if problems:
                raise SystemExit(1)
            click.echo(f"{root / build.LOCK_FILE} matches the definitions in {root / build.IMAGES_FOLDER}")
            return
        lock = build.read_lock(root)
        client = _docker_for_build(need=not apptainer)
        pending: list[str] = []
        for definition in build.definitions(root, list(names)):
            started = time.monotonic()
            entry = _build_one(root, definition, lock, client, apptainer, pending)
            cached = entry.pop("cached")
            lock[definition.name] = entry
            docker = f"{entry['docker_image']} {entry['docker_id']}" if "docker_id" in entry else ""
            sif = f"{entry['sif']} {entry['sif_sha256']}" if "sif" in entry else ""
            made = f" (SIF from the {entry['sif_from'].replace('-', ' ')})" if "sif_from" in entry else ""
            took = " (cached)" if cached else f" (built in {time.monotonic() - started:.0f} s)"
            click.echo(f"{definition.name}: {docker}{took}{', ' if docker and sif else ''}{sif}{made}")
        click.echo(f"wrote {build.write_lock(root, lock)}")
        for message in pending:
            click.echo(f"b2box: {message}", err=True)
        if pending:
            raise SystemExit(3)
    except B2BoxError as error:
        _error(str(error))


@main.command()
@click.argument("target", metavar="SCRIPT|PATH", type=click.Path(dir_okay=True))
@click.argument("tasks", nargs=-1)
def provenance(target: str, tasks: tuple[str, ...]) -> None:
    """For an output file PATH: which task, environment, code, inputs, host and time made it. For a workflow
    SCRIPT: what each task's last job ran in (image digest, runtime), where and when."""
    from b2box.results import provenance as result_provenance

    found = result_provenance.record_of(target) if not tasks else None
    if found is not None:  # an output (even one named *.py) that b2box made
        click.echo(result_provenance.describe(target, *found), nl=False)
        return
    if not target.endswith(".py"):
        _error(
            f"{target}: no record of what made it"
            + (" (no such file)" if not os.path.lexists(target) else "")
            + ". b2box keeps one beside every output it commits; results made by b2luigi or an older b2box have "
            "none until `b2box run SCRIPT --accept` records them. For a workflow, give its .py script."
        )
    run_script(target, ["--provenance", ",".join(tasks)] if tasks else ["--provenance"])


@main.command()
@_SCRIPT
@click.argument("tasks", nargs=-1, required=True)
@click.option("--only", is_flag=True, help="Remove only these families, not what depends on them.")
@click.option("--keep", metavar="TASK[,TASK]", help="Keep the outputs of these families.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing.")
def remove(script: str, tasks: tuple[str, ...], only: bool, keep: str | None, yes: bool) -> None:
    """Remove the outputs of the task families TASKS of SCRIPT (and of their dependents)."""
    flags = ["--remove-only" if only else "--remove", ",".join(tasks)]
    if keep:
        flags += ["--keep", keep]
    if yes:
        flags.append("--yes")
    run_script(script, flags)


def _tool_line(name: str) -> str:
    found = shutil.which(name)
    return f"{name}: {found}" if found else f"{name}: not found"


def _batch_system_lines() -> list[str]:
    """Each registered batch system's tool, found or not, and what the system says of itself where it is here."""
    from b2box.batch.backends import registry

    lines = []
    for entry in registry.registered():
        if not entry.command:
            continue
        lines.append(f"  {_tool_line(entry.command)} ({entry.name})")
        if shutil.which(entry.command):
            said = getattr(registry.backend_type(entry.name), "version_here", lambda: "")()
            lines += [f"  {said}"] if said else []
    return lines


@main.command()
@click.argument("script", required=False, type=click.Path(dir_okay=False))
def info(script: str | None) -> None:
    """Versions, settings files in effect and the batch systems and runtimes found here."""
    from importlib.metadata import version

    from b2box.settings.lookup import settings_sources, validate_settings

    if script:
        os.environ["B2BOX_SCRIPT"] = os.path.abspath(script)
    lines = [
        f"b2box {version('b2box')}",
        f"luigi {version('luigi')}",
        f"python {platform.python_version()} ({sys.executable})",
    ]
    try:
        validate_settings()
        sources = settings_sources()
        lines.append("settings files: " + (", ".join(sources) if sources else "none"))
    except B2BoxError as error:
        lines.append(f"settings: INVALID: {error}")
    lines.append("batch systems:")
    lines += _batch_system_lines()
    lines.append("container runtimes:")
    lines += [f"  {_tool_line(tool)}" for tool in ("apptainer", "singularity", "docker")]
    click.echo("\n".join(lines))


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: str, force: bool) -> None:
    """Write a starter workflow (workflow.py, settings.json) into DIRECTORY."""
    templates = resources.files("b2box") / "templates"
    os.makedirs(directory, exist_ok=True)
    for name in ("workflow.py", "settings.json"):
        destination = os.path.join(directory, name)
        if os.path.exists(destination) and not force:
            _error(f"{destination} exists; use --force to overwrite it or choose another directory.")
        with open(destination, "w", encoding="utf-8") as handle:
            handle.write((templates / name).read_text(encoding="utf-8"))
        click.echo(f"wrote {destination}")
    click.echo(f"Run it with: b2box run {os.path.join(directory, 'workflow.py')}")


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script, e.g. eval "$(b2box completion bash)"."""
    completion_class: Any = get_completion_class(shell)
    click.echo(completion_class(main, {}, "b2box", "_B2BOX_COMPLETE").source())


if __name__ == "__main__":  # pragma: no cover
    main()
