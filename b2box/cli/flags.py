"""The flags of a workflow script, defined once: ``python workflow.py`` (argparse) and ``b2box run`` (click) are both
built from this table, so ``b2box run --help`` lists every flag the script accepts and passes each on unchanged."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import click

Kind = Literal["switch", "int", "text", "names", "optional names"]


def names(value: str) -> list[str]:
    """``"A,B"`` -> ``["A", "B"]``."""
    return [name for name in value.split(",") if name]


@dataclass(frozen=True)
class Flag:
    """One flag: its names, what it takes, and what it does."""

    names: tuple[str, ...]
    kind: Kind
    help: str
    metavar: str = ""
    mode: bool = False  # chooses what the run does (listed together in --help)
    hidden: bool = False  # internal (a batch job's own flags)

    @property
    def dest(self) -> str:
        return self.names[-1].lstrip("-").replace("-", "_")


TASKS = "TASK[,TASK]"
FLAGS = (
    Flag(("--batch",), "switch", "send each task to the batch system (setting batch_system)", mode=True),
    Flag(("--test",), "switch", "run here, one task at a time, with logs and whole tracebacks on screen", mode=True),
    Flag(("--dry-run",), "switch",
         "list pending tasks; exit 1 if there are any, for CI (setting dry_run_pending_exit = 0: exit 0, as b2luigi)",
         mode=True),
    Flag(("--show-output",), "switch", "list every output and whether it exists", mode=True),
    Flag(("--status",), "switch", "complete/stale/failed/pending counts per task family", mode=True),
    Flag(("--tree",), "switch", "with --status: the task graph as a text tree, large families collapsed"),
    Flag(("--why",), "switch", "with --status: why results are stale (per family: what changed)"),
    Flag(("--accept",), "switch",
         "adopt stale and unknown results as they are: record today's identity for them (the old one is kept)",
         mode=True),
    Flag(("--rerun-stale",), "switch", "run every stale result again, whatever the setting rerun_when says"),
    Flag(("--graph",), "text", "write a picture of the task graph, coloured by state (.svg, .html or .dot)", "FILE",
         mode=True),
    Flag(("--report",), "text", "write the run report: one self-contained HTML page of every job's figures", "FILE",
         mode=True),
    Flag(("--json",), "switch", "with --report: print the report's figures as JSON instead"),
    Flag(("--provenance",), "optional names", "what each task's last job ran in, where and when", TASKS, mode=True),
    Flag(("--remove-output", "--remove"), "names",
         "remove the outputs of these task families and of everything depending on them", TASKS, mode=True),
    Flag(("--remove-only",), "names", "remove the outputs of these task families only", TASKS, mode=True),
    Flag(("--keep",), "names", "with --remove: keep the outputs of these task families", TASKS),
    Flag(("-y", "--yes"), "switch", "remove without asking"),
    Flag(("--task",), "text",
         "run this task family of the script instead of what it passes to process() (parameters: --name VALUE)",
         "FAMILY"),
    Flag(("--workers",), "int", "tasks (with --batch: jobs) at once; wins over process(workers=...) and settings"),
    Flag(("--verbose",), "switch", "a line for every failed task (failures of one cause are otherwise one line)"),
    Flag(("--luigi-summary",), "switch",
         "also print b2luigi's 'Failed task ...' block per failed task on stdout (b2box's summary names them once)"),
    Flag(("--keep-jobs",), "switch", "with --batch: on Ctrl-C leave submitted jobs running (the next run re-attaches)"),
    Flag(("--strict-settings",), "switch", "unknown setting names are errors, not warnings (setting strict_settings)"),
    Flag(("--scheduler-host",), "text", "use the central luigid scheduler on this host"),
    Flag(("--scheduler-port",), "int", "port of the central luigid scheduler"),
    Flag(("--batch-runner",), "switch", "", hidden=True),
    Flag(("--task-id",), "text", "", hidden=True),
)  # fmt: skip


def argparse_parser() -> argparse.ArgumentParser:
    """The parser of ``python workflow.py [flags]``."""
    parser = argparse.ArgumentParser(description="Run this b2box workflow.")
    mode = parser.add_argument_group("what to do (default: run the workflow here)")
    for flag in FLAGS:
        target = mode if flag.mode else parser
        options: dict[str, Any] = {"dest": flag.dest, "help": argparse.SUPPRESS if flag.hidden else flag.help}
        if flag.kind == "switch":
            options["action"] = "store_true"
        elif flag.kind == "int":
            options.update(type=int, default=None)
        elif flag.kind == "text":
            options["default"] = ""
        elif flag.kind == "names":
            options.update(type=names, default=[], metavar=flag.metavar)
        else:
            options.update(type=names, nargs="?", const=[], default=None, metavar=flag.metavar)
        target.add_argument(*flag.names, **options)
    return parser


def click_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Every visible flag as a click option of ``b2box run`` (the values go back to the script as flags)."""
    for flag in reversed(FLAGS):
        if flag.hidden:
            continue
        declarations = [*flag.names, flag.dest]
        if flag.kind == "switch":
            function = click.option(*declarations, is_flag=True, help=flag.help)(function)
        elif flag.kind == "int":
            function = click.option(*declarations, type=int, help=flag.help)(function)  # checked by the script
        elif flag.kind == "optional names":
            function = click.option(*declarations, metavar=flag.metavar, is_flag=False, flag_value="",
                                    default=None, help=flag.help + " (all tasks without a list)")(function)  # fmt: skip
        else:
            function = click.option(*declarations, metavar=flag.metavar or "TEXT", help=flag.help)(function)
    return function


def as_script_flags(values: dict[str, Any]) -> list[str]:
    """The command line of the script for the values ``b2box run`` collected."""
    arguments: list[str] = []
    for flag in FLAGS:
        value = values.get(flag.dest)
        name = flag.names[-1]
        if flag.kind == "switch":
            if value:
                arguments.append(name)
        elif flag.kind == "optional names":
            if value is not None:
                arguments += [name, value] if value else [name]
        elif value is not None and value != "" and value != []:
            arguments += [name, str(value)]
    return arguments
