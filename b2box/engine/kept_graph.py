"""A complete workflow's graph, kept between commands: a rerun with nothing to do makes no task at all.

Building the graph makes every task (luigi's constructor, ``requires()``, ``output()``) and judges every result's
identity: about 100 µs a task, ten seconds for 100,000, before a rerun can say there is nothing to do. When a run
ends with every task complete and up to date, what the graph showed is kept in the first root's result folder: each
task's id, family, outputs and its result's entry in the folder's index, and what shaped the graph (the basis):
every loaded module's file, the settings files looked for, ``set_setting``'s values, luigi's configuration, the
environment variables, the working folder, the environments' images, and what ``requires()`` read
(:mod:`b2box.engine.read_watch`).

The next command with the same roots uses it only when all of that is unchanged, no run is making results in its
folders, each result's entry in its folder's index is the one kept and every output is there; otherwise the graph
is built as always. Equal code, settings and environment give equal identities, so equal recorded identities mean
nothing is stale: the check costs one ``access`` per output and one look-up per result in the folders' indexes.
What is found stands in for the graph as a :class:`~b2box.engine.kept_tasks.KeptGraph`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import luigi.configuration

from b2box.engine.graph import Node, State, TaskGraph, is_external
from b2box.engine.kept_tasks import KeptGraph
from b2box.jsonio import read_json, write_json
from b2box.results import identity, records
from b2box.results.staleness import ResultCheck
from b2box.settings import lookup
from b2box.settings.paths import script_path
from b2box.settings.resolved import run_settings, settings_of
from b2box.settings.sources import settings_file_candidates
from b2box.version import __version__

FORMAT = 4  # 4: environments are kept without their variables' values
_RACY_NS = 60 * 10**9  # files changed this shortly before a graph was built are kept by content too
# Variables a shell changes between two commands without changing what a workflow does, and the script's path,
# which ``b2box run`` sets and ``python script.py`` does not (the context names the script itself).
_VOLATILE = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "COLUMNS", "LINES",
                       "B2BOX_SCRIPT"})  # fmt: skip


@dataclass(frozen=True)
class Basis:
    """What shaped a graph, taken right after it was built: compared whole before a kept graph is used."""

    context: dict[str, str]
    stamps: list[list[Any]]  # [path, modification time in ns, size] (-1, -1: not there)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _context() -> dict[str, str]:
    """Everything but files that a graph's shape and identities may depend on, digested."""
    variables = sorted((name, value) for name, value in os.environ.items() if name not in _VOLATILE)
    return {
        "b2box": __version__,
        "python": f"{sys.executable} {sys.version}",
        "cwd": os.getcwd(),
        "script": script_path() or "",
        "environment": _digest(json.dumps(variables)),
        "set_setting": _digest(json.dumps(lookup._global_settings, sort_keys=True, default=repr)),
        "luigi": _digest(json.dumps(_luigi_configuration(), sort_keys=True)),
    }


def _luigi_configuration() -> dict[str, dict[str, str]]:
    config = luigi.configuration.get_config()
    try:
        return {section: dict(config.items(section, raw=True)) for section in config.sections()}
    except Exception:  # a configuration that cannot be listed is never the same twice
        return {"unreadable": {"id": str(id(config))}}


def _stamp(path: str, racy_since: int | None = None) -> list[Any]:
    """[path, modification time, size], and the content's digest when it changed after ``racy_since`` (ns): a file
    changed again within the file system's clock tick keeps its time, and, written to the same size, would look
    unchanged (git's "racy" entries)."""
    try:
        status = os.stat(path)
    except OSError:
        return [path, -1, -1]
    stamp = [path, status.st_mtime_ns, status.st_size]
    if racy_since is not None and status.st_mtime_ns >= racy_since:
        stamp.append(_content(path))
    return stamp


def _content(path: str) -> str:
    """The digest of a file's bytes or a folder's names."""
    try:
        if os.path.isdir(path):
            return _digest("\0".join(sorted(os.listdir(path))))
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return ""


def _unchanged(stamp: list[Any]) -> bool:
    again = _stamp(stamp[0])
    return again == stamp[:3] and (len(stamp) == 3 or _content(stamp[0]) == stamp[3])


def basis(graph: TaskGraph) -> Basis:
    """Take the basis of ``graph`` now (right after it was built, before any task changes a file)."""
    paths = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
    paths.update(settings_file_candidates())
    paths.add(script_path())
    paths.update(graph.reads.files | graph.reads.folders)
    racy_since = time.time_ns() - _RACY_NS
    named = sorted(path for path in paths if isinstance(path, str))
    return Basis(_context(), [_stamp(path, racy_since) for path in named])


def _file_for(roots: list[Any]) -> str:
    """In the first root's result folder (a plain run keeps no bookkeeping folder), named by the roots."""
    name = _digest("\0".join(sorted(str(root.task_id) for root in roots)))[:20]
    return os.path.join(settings_of(roots[0]).folders.result_dir, f".b2box-graph-{name}.json")


# -- keeping ----------------------------------------------------------------------------------------------------


def keep(graph: TaskGraph, roots: list[Any], taken: Basis) -> bool:
    """Keep ``graph`` for the next command when every task is complete and up to date; whether it was kept."""
    entries = _entries(graph) if roots and run_settings().keep_graph else None
    if entries is None:
        if roots:
            with contextlib.suppress(OSError):
                os.remove(_file_for(roots))
        return False
    folders: dict[str, int] = {}
    families: dict[str, int] = {}
    family_runs: list[list[int]] = []
    folder_runs: list[list[int]] = []
    for node, result_dir, _, _ in entries:
        _count(family_runs, families.setdefault(node.family, len(families)))
        _count(folder_runs, folders.setdefault(result_dir, len(folders)) if result_dir else -1)
    header = {
        "format": FORMAT,
        "context": taken.context,
        "stamps": taken.stamps,
        "environments": identity.bare_environments(),
        "roots": [str(root.task_id) for root in roots],
        "result_dirs": list(folders),
        "families": list(families),
        "family_runs": family_runs,
        "folder_runs": folder_runs,
    }
    columns = {  # one line per task: JSON reads a few long texts ten times faster than many short ones
        "ids": lambda: (node.task_id for node, _, _, _ in entries),
        "entries": lambda: (entry for _, _, entry, _ in entries),
        "outputs": lambda: (outputs for _, _, _, outputs in entries),
    }
    path = _file_for(roots)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, header, columns)
    return True


def _entries(graph: TaskGraph) -> list[tuple[Node, str, str, str]] | None:
    """(node, result folder, its entry in the folder's index, its outputs) of every task, or None when the graph
    cannot be kept. The entry (identity, and what the run that made it used) is the index's own string, and the
    outputs are relative to the result folder (the index's keys), tab-separated: nothing per task is copied."""
    if not graph.keepable or graph.results.problems:
        return None
    book = graph.results.book
    folders: dict[str, tuple[str, dict[str, str]]] = {}  # result folder -> (its prefix, its index)
    entries = []
    for node in graph.nodes.values():
        if node.state is not State.DONE and (node.state is not State.COMPLETE or node.stale or node.unknown):
            return None  # (a result made again in this run is neither stale nor unknown any more)
        if not node.first_output:
            if not (isinstance(node.task, luigi.WrapperTask) or is_external(node.task)):
                return None  # a task without a local output: its figures would be read from its job's record
            entries.append((node, "", "", "\t".join(node.more_outputs)))  # an input: its files are checked
            continue
        result_dir = settings_of(node.task).folders.result_dir
        folder = folders.get(result_dir)
        if folder is None:
            folder = folders[result_dir] = (result_dir.rstrip("/") + "/", book.entries(result_dir) or {})
        prefix, index = folder
        first = node.first_output
        if not first.startswith(prefix) or not all(path.startswith(prefix) for path in node.more_outputs):
            return None  # an output outside its result folder: checked by a build only
        outputs = first[len(prefix) :]
        if node.more_outputs:
            outputs = "\t".join([outputs, *(path[len(prefix) :] for path in node.more_outputs)])
        entry = index.get(first[len(prefix) :])
        if entry is None:
            return None  # not in an up-to-date index of its folder: checked by a build only
        entries.append((node, result_dir, entry, outputs))
    if any("\n" in outputs for _, _, _, outputs in entries):
        return None  # (the kept graph's columns are lines)
    return entries


def _count(runs: list[list[int]], value: int) -> None:
    """Add ``value`` to a run-length list ([[value, how many], ...]: a family's tasks come together)."""
    if runs and runs[-1][0] == value:
        runs[-1][1] += 1
    else:
        runs.append([value, 1])


def _expanded(runs: list[list[int]]) -> Iterator[int]:
    return itertools.chain.from_iterable(itertools.repeat(value, count) for value, count in runs)


# -- using ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """What was found for a command's roots."""

    graph: KeptGraph | None  # the kept graph, when it stands
    elsewhere: bool = False  # one kept under other variables or another working folder (another shell's) stands


def complete_graph(roots: list[Any]) -> KeptGraph | None:
    """The kept graph of ``roots`` when it still stands for the graph a build would make and everything in it is
    complete and up to date; None otherwise."""
    return look_up(roots).graph


def look_up(roots: list[Any]) -> Lookup:
    """The kept graph of ``roots`` (see :func:`complete_graph`). One whose results changed, or kept by other code or
    settings, is dropped; one kept under other variables or in another working folder stays for the shell that
    has them (a look from this one does not replace it: only a run does)."""
    if not roots or not run_settings().keep_graph:
        return Lookup(None)
    path = _file_for(roots)
    kept = read_json(path)
    if kept is None:
        return Lookup(None)
    graph = None
    try:
        if kept["format"] == FORMAT and kept["context"] != _context():
            return Lookup(None, elsewhere=True)
        if _same_basis(kept, [str(root.task_id) for root in roots]):
            graph = _complete(kept)
    except (KeyError, TypeError, ValueError, IndexError):
        pass  # written by another version of b2box, or damaged
    if graph is None:
        with contextlib.suppress(OSError):
            os.remove(path)
    return Lookup(graph)


def _same_basis(kept: dict[str, Any], root_ids: list[str]) -> bool:
    """Whether ``kept`` was kept for these roots by the same code, settings, variables and environments."""
    if kept["format"] != FORMAT or kept["roots"] != root_ids or kept["context"] != _context():
        return False
    return all(map(_unchanged, kept["stamps"])) and _same_environments(kept["environments"])


def _same_environments(environments: list[list[Any]]) -> bool:
    """Each environment's image resolved again (a tag may point at another image now); one without an image or an
    env_script is all settings, which the basis holds (its check would import the environment model, pydantic)."""
    environments = [pair for pair in environments if pair[0].get("image") or pair[0].get("env_script")]
    if not environments:
        return True
    from b2box.env.spec import EnvSpec
    from b2box.errors import B2BoxError

    for spec, found in environments:
        try:
            if identity.environment_of_spec("(kept graph)", EnvSpec.model_validate(spec))[0] != found:
                return False
        except (B2BoxError, ValueError):
            return False
    return True


def _complete(kept: dict[str, Any]) -> KeptGraph | None:
    """The kept graph, when every output is there and every result's identity is the one kept."""
    folders, families = kept["result_dirs"], kept["families"]
    if any(os.path.exists(os.path.join(folder, records.DIRTY_FILE)) for folder in folders):
        return None  # a run is making results there (or was killed while it did)
    book = records.ResultBook()
    indexes = [book.entries(folder) or {} for folder in folders]
    prefixes = [folder.rstrip("/") + "/" for folder in folders]
    rows = zip(
        kept["ids"].split("\n"),
        _expanded(kept["family_runs"]),
        _expanded(kept["folder_runs"]),
        kept["entries"].split("\n"),
        kept["outputs"].split("\n"),
        strict=True,
    )
    tasks: list[tuple[str, str, str, str, str]] = []
    every_path: list[str] = []
    for task_id, family, place, entry, output in rows:
        if place >= 0 and "\t" not in output:  # (most tasks: one output in a result folder)
            if indexes[place].get(output) != entry:
                return None  # made again since, or otherwise than this graph says
            path = prefixes[place] + output
            every_path.append(path)
            tasks.append((task_id, families[family], folders[place], path, entry))
            continue
        outputs = output.split("\t") if output else []
        if place < 0:  # an input (or a wrapper): its files are checked
            every_path += outputs
            tasks.append((task_id, families[family], "", "", ""))
            continue
        if indexes[place].get(outputs[0]) != entry:
            return None
        paths = [prefixes[place] + path for path in outputs]
        every_path += paths
        tasks.append((task_id, families[family], folders[place], paths[0], entry))
    if not _all_there(every_path):
        return None
    return KeptGraph(ResultCheck(book=book), tasks, kept["roots"])


def _all_there(paths: list[str]) -> bool:
    """Whether every path exists: ``access`` in a loop that stays in C, in two threads (the calls wait for the file
    system without the interpreter's lock): a hundred thousand in about 0.1 s where ``os.path.exists`` takes 0.3 s."""
    half = len(paths) // 2
    if half < 1000:
        return all(map(os.access, paths, itertools.repeat(os.F_OK)))
    with ThreadPoolExecutor(2) as pool:
        parts = pool.map(
            lambda part: all(map(os.access, part, itertools.repeat(os.F_OK))), (paths[:half], paths[half:])
        )
        return all(list(parts))
