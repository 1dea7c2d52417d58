"""A Dockerfile turned into an Apptainer definition, with spython, for machines that have Apptainer and no Docker.

spython's converter (``spython recipe``) translates the common instructions, but silently writes nonsense for
others (``USER`` becomes ``su -`` in ``%post``, ``SHELL`` and ``ONBUILD`` become shell commands, a second ``FROM``
drops a stage). So every instruction is read here first, with its line number: what cannot be carried over stops
the build with one line naming the file, the line and what to do; what Docker uses only at run time
(``EXPOSE``, ``HEALTHCHECK`` ...) is dropped with a warning; the rest goes to spython, whose recipe is then
corrected where its output would differ from the Docker build (``ENV`` exported to later ``RUN`` lines as Docker
does, a ``CMD`` without ``ENTRYPOINT`` run as a command, not as an argument of bash).
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from b2box.errors import B2BoxError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")
# Instructions Docker uses only when a container runs or for images built FROM this one: dropping them leaves the
# files of the image as they are.
RUN_TIME_ONLY = {
    "EXPOSE": "ports are not part of an Apptainer image",
    "HEALTHCHECK": "Apptainer has no health checks",
    "STOPSIGNAL": "Apptainer stops a container with the signal its caller sends",
    "VOLUME": "Apptainer binds folders when it runs (b2box: the 'binds' setting)",
    "ONBUILD": "it acts only on images built FROM this one",
    "MAINTAINER": "deprecated by Docker; use LABEL",
}
PASSED_ON = {"ENV", "CMD", "ENTRYPOINT"}  # spython translates these faithfully (ENV: see _exported)


@dataclass(frozen=True)
class Instruction:
    """One instruction of a Dockerfile: its first line's number, keyword and (continuation-joined) arguments."""

    line: int
    keyword: str
    arguments: str


@dataclass
class Conversion:
    """A Dockerfile rewritten into the instructions spython translates faithfully, and what was dropped."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # "NAME VALUE", as %labels wants them
    workdir: str = "/"
    stages: int = 0


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions; comment lines and blank lines are skipped, continued lines joined."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].rstrip() if continued else stripped)
        if not continued:
            keyword, _, arguments = " ".join(pending).partition(" ")
            found.append(Instruction(start, keyword.upper(), arguments.strip()))
            pending = []
    if pending:
        keyword, _, arguments = " ".join(pending).partition(" ")
        found.append(Instruction(start, keyword.upper(), arguments.strip()))
    return found


class _Refused(B2BoxError):
    """An instruction this conversion cannot carry over; the message says what to do instead."""


def convert(dockerfile: Path) -> tuple[str, list[str]]:
    """The Apptainer definition of ``dockerfile`` and the warnings about what was dropped; a :class:`B2BoxError`
    naming the file, the line and the fix for what cannot be translated."""
    text = dockerfile.read_text()
    escape = re.match(r"\s*#\s*escape\s*=\s*(\S)", text)
    if escape and escape.group(1) != "\\":
        raise B2BoxError(f"{dockerfile}:1: '# escape={escape.group(1)}' is not translated; use the default '\\'")
    conversion = Conversion()
    for instruction in instructions(text):
        try:
            _take(instruction, dockerfile.parent, conversion)
        except _Refused as refused:
            raise B2BoxError(
                f"{dockerfile}:{instruction.line}: {instruction.keyword} {refused}; or write "
                f"{dockerfile.parent / 'apptainer.def'}, which b2box builds as it is"
            ) from None
    if conversion.stages == 0:
        raise B2BoxError(f"{dockerfile}: no FROM line; start it with FROM and the base image")
    warnings = [f"{dockerfile}:{warning}" for warning in conversion.warnings]
    return _spython_definition(conversion.lines, conversion.labels), warnings


def _take(instruction: Instruction, folder: Path, conversion: Conversion) -> None:
    """Add the instruction to the conversion (rewritten where needed), or refuse it."""
    keyword, arguments = instruction.keyword, instruction.arguments
    if keyword in RUN_TIME_ONLY:
        conversion.warnings.append(f"{instruction.line}: {keyword} ignored: {RUN_TIME_ONLY[keyword]}")
    elif keyword == "FROM":
        conversion.lines.append(_from(arguments, conversion))
    elif conversion.stages == 0 and keyword != "ARG":
        raise _Refused("before FROM: start the Dockerfile with FROM")
    elif keyword == "ARG":
        conversion.lines.extend(_arg(arguments, conversion))
    elif keyword == "USER":
        raise _Refused(
            "is not translated: Apptainer runs %post as root and a container as whoever starts it; "
            "remove the USER line (files a RUN line makes belong to root, as they would without it)"
        )
    elif keyword == "SHELL":
        raise _Refused("is not translated: Apptainer runs %post with /bin/sh; write the RUN lines for sh")
    elif keyword == "RUN":
        conversion.lines.append(f"RUN {_run(arguments)}")
    elif keyword == "WORKDIR":
        conversion.workdir = posixpath.join(conversion.workdir, arguments)
        conversion.lines.append(f"WORKDIR {conversion.workdir}")
    elif keyword in ("COPY", "ADD"):
        if any(line.startswith("RUN ") for line in conversion.lines):
            conversion.warnings.append(
                f"{instruction.line}: {keyword} after RUN: Apptainer copies files before any RUN line runs "
                "(%files before %post); the same unless an earlier RUN line writes that path"
            )
        conversion.lines.extend(_copy(keyword, arguments, folder, conversion.workdir))
    elif keyword == "LABEL":
        conversion.labels.extend(_labels(arguments))
    elif keyword in PASSED_ON:
        conversion.lines.append(f"{keyword} {arguments}")
    else:
        raise _Refused("is not a Dockerfile instruction b2box translates; remove it")


def _from(arguments: str, conversion: Conversion) -> str:
    words = arguments.split()
    if conversion.stages:
        raise _Refused(
            "a second FROM (a multi-stage build) is not translated: Apptainer builds one image here; build in one stage"
        )
    conversion.stages += 1
    if any(word.startswith("--") for word in words):
        raise _Refused(f"{words[0]} is not translated; remove the option")
    if "$" in arguments:
        raise _Refused("with an ARG in the image name is not translated; write the image name itself")
    return f"FROM {words[0]}"


def _arg(arguments: str, conversion: Conversion) -> list[str]:
    """A build argument is an environment variable of later RUN lines (with its default: b2box passes none)."""
    if conversion.stages == 0:
        raise _Refused("before FROM (an ARG used in FROM) is not translated; write the image name in FROM")
    name, has_default, default = arguments.partition("=")
    if not has_default:
        return []  # without a value given at build time Docker leaves it unset, as it stays here
    return [f"RUN export {name.strip()}={default.strip()}"]


def _run(arguments: str) -> str:
    if arguments.startswith("--"):
        raise _Refused(f"{arguments.split()[0]} is not translated; remove the option")
    if re.match(r"<<-?\s*['\"]?\w", arguments):
        raise _Refused("with a here-document is not translated; write the commands on RUN lines")
    if arguments.startswith("["):
        try:
            words = json.loads(arguments)
        except ValueError:
            raise _Refused("is neither a JSON list nor a shell command; fix its brackets") from None
        return shlex.join(str(word) for word in words)
    return arguments


def _copy(keyword: str, arguments: str, folder: Path, workdir: str) -> list[str]:
    """One ``COPY source destination`` per file, the destination absolute (Docker resolves it in the WORKDIR)."""
    try:
        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    except ValueError:
        raise _Refused("has unbalanced quotes or brackets; fix them") from None
    if any(word.startswith("--from") for word in words):
        raise _Refused("--from (a multi-stage build) is not translated: build in one stage")
    options = [word for word in words if word.startswith("--")]
    if options:
        raise _Refused(f"{options[0]} is not translated; remove it (Apptainer's files belong to root)")
    if len(words) < 2:
        raise _Refused("needs a source and a destination")
    *sources, destination = words
    target = posixpath.join(workdir, destination)
    into_folder = destination.endswith("/") or len(sources) > 1
    lines = []
    for source in sources:
        for path in _sources(keyword, source, folder):
            name = path.relative_to(folder).as_posix()
            where = posixpath.join(target, path.name) if into_folder else target
            lines.append(f"COPY {name} {where}")
    return lines


def _sources(keyword: str, source: str, folder: Path) -> list[Path]:
    """The files of the environment's folder that a COPY source names."""
    if keyword == "ADD" and re.match(r"[a-z]+://", source):
        raise _Refused(f"of a URL ({source}) is not translated; download it in a RUN line, or COPY a local file")
    if keyword == "ADD" and source.endswith(ARCHIVE_SUFFIXES):
        raise _Refused(f"of an archive ({source}) unpacks it in Docker; COPY it and unpack it in a RUN line")
    if posixpath.isabs(source) or ".." in source.split("/"):
        raise _Refused(f"of {source}: sources are files of {folder}; name them relative to it")
    found = sorted(folder.glob(source)) if any(char in source for char in "*?[") else [folder / source]
    for path in found:
        if path.is_dir():
            raise _Refused(
                f"of the folder {source} is not translated (Docker copies its contents, Apptainer the folder "
                "itself); COPY its files one by one"
            )
        if not path.is_file():
            raise _Refused(f"of {source}: there is no such file in {folder}")
    if not found:
        raise _Refused(f"of {source}: no file of {folder} matches")
    return found


def _labels(arguments: str) -> list[str]:
    """``LABEL a=b "c d"="e f"`` (or the old ``LABEL name value``) as ``%labels`` lines."""
    try:
        words = shlex.split(arguments)
    except ValueError:
        raise _Refused("has unbalanced quotes; fix them") from None
    if words and "=" not in words[0]:
        return [f"{words[0]} {' '.join(words[1:])}"]
    pairs = [word.partition("=") for word in words]
    if any(not has_value for _, has_value, _ in pairs):
        raise _Refused("mixes NAME=VALUE pairs with other words; write NAME=VALUE pairs only")
    return [f"{name.replace(' ', '_')} {value}" for name, _, value in pairs]


def _spython_definition(lines: list[str], labels: list[str]) -> str:
    """spython's definition of the rewritten Dockerfile, corrected where it differs from what Docker builds."""
    from spython.main.parse.parsers import DockerParser
    from spython.main.parse.writers import SingularityWriter

    parser = DockerParser(None, load=False)
    parser.lines = [f"{line}\n" for line in lines]
    with contextlib.redirect_stderr(io.StringIO()):  # its warnings about files are about its own working folder
        parser.parse()
    for recipe in parser.recipe.values():
        environ = set(recipe.environ)
        # Docker's ENV is in the environment of every later RUN line, not only a shell variable of %post.
        recipe.install = [f"export {line}" if line in environ else line for line in recipe.install]
        if recipe.entrypoint is None and recipe.cmd is not None:
            recipe.entrypoint, recipe.cmd = recipe.cmd, None  # else spython runs bash with CMD's words as a script
        recipe.labels = [[label] for label in labels]
    return str(SingularityWriter(parser.recipe).convert()).rstrip() + "\n"
