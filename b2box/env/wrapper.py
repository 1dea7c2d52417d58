"""The wrapper: one readable bash script per job, run unchanged by every backend.

Its text is ``templates/job.sh``, a file a site admin can read; this module
fills in the job's values. Outside the container the wrapper enters the
working folder, (for pinned SIFs) checks the image digest, starts the
container with every needed folder bound at the same path, and finally
records the exit status and end time in ``exit.json`` beside the logs, so
the result of a job is known even when the batch system has forgotten it.
Inside the container (the same file, called with ``--inside``) it sources
the ``env_script``, exports the variables and starts the job's first Python,
``b2box/job/bootstrap.py``.

Every value is quoted with ``shlex.quote``: spaces, quotes, ``$()``,
backticks, newlines and non-ASCII text arrive unchanged and nothing is
executed by accident. The script never prints the environment.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from b2box.env.mounts import mount_spec, parse_mount

# Exit codes the template uses (templates/job.sh writes them as numbers, for the reader).
EXIT_NO_WORKING_DIR = 70
EXIT_ENV_SCRIPT = 71
EXIT_BAD_ENVIRONMENT = 72
EXIT_DIGEST_MISMATCH = 74
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
PID_FILE_VARIABLE = "_B2BOX_PID_FILE"  # set for local jobs: where the job writes its own id when it starts
# A local job names itself (pid and start time) before anything else, so that a run that lost track of it (killed
# between starting it and recording it) finds it again.
ANNOUNCE_LOCAL_JOB = [
    f'if [ -n "${{{PID_FILE_VARIABLE}:-}}" ]; then',
    '    read -r b2box_stat < /proc/$$/stat; b2box_stat=${b2box_stat##*) }; read -r -a b2box_fields <<< "$b2box_stat"',
    f'    printf \'local-%s-%s\\n\' "$$" "${{b2box_fields[19]}}" > "${PID_FILE_VARIABLE}"',
    "fi",
]


@dataclass(frozen=True)
class WrapperPlan:
    """Everything the wrapper needs, already resolved."""

    title: str
    wrapper_path: str
    working_dir: str
    container_command: Sequence[str]  # starts `bash <wrapper> --inside` in the container; empty: no container
    image_label: str
    env_script: str
    env: dict[str, str]
    python: Sequence[str]
    job_file: str
    exit_file: str
    host_python_version: str
    host_site_dirs: Sequence[str]
    sif_to_verify: str = ""
    pinned_digest: str = ""
    bootstrap: str = ""  # b2box/job/bootstrap.py: the job's first Python program
    secret_file: str = ""  # variables that must not be written here: read (and removed) when the job starts
    secret_names: Sequence[str] = ()
    # "apptainer"/"singularity": hand the secrets into the container through its *ENV_ prefix; "docker": the job
    # reads the file in the container (bound in with its folder), which the wrapper removes when the container ends
    secrets_via: str = ""
    job_server_python: str = ""  # without a container: the Python that may use a local job server
    job_client: str = ""  # b2box/job/client.py, which asks that server to fork the task
    server_lost_exit: int = 75  # the client's status when there is no server: start Python as usual
    # a group job (tasks_per_job): each member's (exit record, stderr), so none is left without a record
    members: Sequence[tuple[str, str]] = ()
    # no shared filesystem (b2box.batch.transfer): these folders live under $B2BOX_ROOT on the worker node and
    # are bound from there at their usual paths into the container
    rooted_binds: Sequence[str] = ()


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def q(value: str) -> str:
    """Quote one word for bash, on one line: a value with a line break or another control character (a parameter
    value may hold one) is written in bash's ``$'...'`` form, which spells them as escapes."""
    text = str(value)
    if not _CONTROL.search(text):
        return shlex.quote(text)
    escaped = "".join(_escape(character) for character in text)
    return f"$'{escaped}'"


def _escape(character: str) -> str:
    if character in ("\\", "'"):
        return "\\" + character
    if ord(character) < 32 or ord(character) == 127:
        return f"\\x{ord(character):02x}"
    return character


def words(values: Sequence[str]) -> str:
    """Quote several words for bash."""
    return " ".join(q(value) for value in values)


def say(template: str, *args: str, variables: Sequence[str] = ()) -> str:
    """A bash command printing a b2box message to stderr; values are passed as quoted printf arguments, except
    the shell ``variables`` (such as ``$b2box_status``) among them, which are expanded when the message prints."""
    command = f"printf {q('b2box: ' + template + chr(92) + 'n')} {words(args)} >&2"
    for variable in variables:
        command = command.replace(q(variable), f'"{variable}"')
    return command


def _source_env_script(plan: WrapperPlan) -> str:
    if not plan.env_script:
        return ""
    failed = say("env_script %s failed", plan.env_script)
    return f"source {q(plan.env_script)} || {{ {failed}; exit {EXIT_ENV_SCRIPT}; }}"


def _use_job_server(plan: WrapperPlan) -> list[str]:
    if not plan.job_server_python:
        return []
    return [
        'if [ -S "${B2BOX_JOB_SERVER:-}" ]; then',
        "    # A b2box job server on this machine forks the task from a warm process (b2box.job.server);",
        f"    # when it is gone ({plan.server_lost_exit}), Python is started as usual below.",
        f'    {q(plan.job_server_python)} -I -S {q(plan.job_client)} "$B2BOX_JOB_SERVER" {q(plan.job_file)} "$1"',
        "    b2box_client=$?",
        f'    [ "$b2box_client" -eq {plan.server_lost_exit} ] || exit "$b2box_client"',
        "fi",
    ]


def _load_secrets(plan: WrapperPlan) -> list[str]:
    """The job's secrets: from a file only its user can read, removed at once (b2box.batch.secrets)."""
    if not plan.secret_file:
        return []
    if plan.secrets_via == "docker":
        return [f"# {', '.join(plan.secret_names)}: read by the job in its container from a file only you can read."]
    path = host_path(plan, plan.secret_file)
    lines = [
        f"# {', '.join(plan.secret_names)}: from a file only you can read, removed once read; never written here.",
        f"if [ -r {path} ]; then set -a; source {path}; set +a; rm -f {path}; fi",
    ]
    if plan.secrets_via:
        prefix = "SINGULARITYENV_" if "singularity" in os.path.basename(plan.secrets_via) else "APPTAINERENV_"
        lines += [f'export {prefix}{name}="${{{name}:-}}"' for name in plan.secret_names]
    return lines


# Inside the container: a Docker job's secrets file, read and removed before anything else runs.
LOAD_SECRETS_INSIDE = [
    'if [ -r "${_B2BOX_SECRETS_FILE:-}" ]; then',
    '    set -a; source "$_B2BOX_SECRETS_FILE"; set +a; rm -f "$_B2BOX_SECRETS_FILE"; unset _B2BOX_SECRETS_FILE',
    "fi",
]


def _forget_secrets(plan: WrapperPlan) -> list[str]:
    """After a Docker job: its secrets' folder goes, whether or not the job got to read the file."""
    if plan.secrets_via != "docker" or not plan.secret_file:
        return []
    return [f"rm -rf -- {host_path(plan, os.path.dirname(plan.secret_file))}"]


def _verify_digest(plan: WrapperPlan) -> list[str]:
    if not (plan.sif_to_verify and plan.pinned_digest):
        return []
    expected = plan.pinned_digest.removeprefix("sha256:")
    refuse = say(
        "refusing to run: %s is sha256:%s, not the pinned sha256:%s. Rebuild or re-lock the image (b2box build-env).",
        plan.sif_to_verify,
        "$b2box_digest",
        expected,
        variables=["$b2box_digest"],
    )
    return [
        "# The image must be the pinned one: compare its sha256 before starting.",
        f"b2box_digest=$(sha256sum -- {q(plan.sif_to_verify)} | cut -d' ' -f1)",
        f'if [ "$b2box_digest" != {q(expected)} ]; then',
        f"    {refuse}",
        f"    b2box_record {EXIT_DIGEST_MISMATCH}",
        f"    exit {EXIT_DIGEST_MISMATCH}",
        "fi",
    ]


ROOT = '"${B2BOX_ROOT:-}"'
_ROOT_MARK = "\x00B2BOX_ROOT\x00"  # where $B2BOX_ROOT goes in a --mount value


def host_path(plan: WrapperPlan, path: str) -> str:
    """A path outside the container: under $B2BOX_ROOT when the job brought its folders along."""
    return ROOT + q(path) if plan.rooted_binds else q(path)


def _container_words(plan: WrapperPlan) -> str:
    """The container command; the sources of ``rooted_binds`` are the folders' copies under $B2BOX_ROOT."""
    rendered = []
    for previous, word in zip(["", *plan.container_command], plan.container_command, strict=False):
        mount = parse_mount(word) if previous == "--mount" else None
        if mount is not None and mount[0] in plan.rooted_binds:
            source, target, key = mount
            before, after = mount_spec(_ROOT_MARK + source, target, key).split(_ROOT_MARK)
            rendered.append(q(before) + ROOT + q(after))
        else:
            rendered.append(q(word))
    return " ".join(rendered)


def render(plan: WrapperPlan) -> str:
    """The wrapper's text: ``templates/job.sh`` with the plan's values filled in."""
    python = plan.python[0]
    start = f'{_container_words(plan)} "$b2box_job_id"' if plan.container_command else '(inside "$b2box_job_id")'
    return fill(
        _template(),
        {
            "title": plan.title,
            "image_label": plan.image_label,
            "working_dir": q(plan.working_dir),
            "host_working_dir": host_path(plan, plan.working_dir),
            "say_no_working_dir": say("cannot enter the working folder %s", plan.working_dir),
            "source_env_script": _source_env_script(plan),
            "export_env": [f"export {name}={q(value)}" for name, value in sorted(plan.env.items())],
            "use_job_server": _use_job_server(plan),
            "python": q(python),
            "say_no_python": say(
                "image %s has no %s: install Python in it or set the 'executable' setting", plan.image_label, python
            ),
            "python_words": words(plan.python),
            "bootstrap": q(plan.bootstrap),
            "bootstrap_args": words(
                [plan.image_label, plan.host_python_version, ":".join(plan.host_site_dirs), plan.job_file]
            ),
            "exit_file": host_path(plan, plan.exit_file),
            "verify_digest": _verify_digest(plan),
            "load_secrets": _load_secrets(plan),
            "start": start,
            "record_unstarted_members": _unrecorded_members(plan),
            "announce_local_job": ANNOUNCE_LOCAL_JOB,
            "load_secrets_inside": LOAD_SECRETS_INSIDE if plan.secrets_via == "docker" else [],
            "forget_secrets": _forget_secrets(plan),
        },
    )


@functools.lru_cache(maxsize=1)
def _template() -> str:
    return (resources.files("b2box.env") / "templates" / "job.sh").read_text(encoding="utf-8")


def fill(template: str, values: Mapping[str, str | list[str]]) -> str:
    """Fill ``{{name}}`` placeholders. A placeholder alone on its line is a block: each of its lines keeps the
    placeholder's indentation, and an empty block leaves no line; elsewhere a value is one line of text."""
    lines = []
    for line in template.splitlines():
        alone = _PLACEHOLDER.fullmatch(line.strip())
        if alone:
            value = values[alone.group(1)]
            block = value if isinstance(value, list) else ([value] if value else [])
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + text if text else text for text in block]
            continue
        lines.append(_PLACEHOLDER.sub(lambda match: _inline(values[match.group(1)]), line))
    return "\n".join(lines) + "\n"


def _inline(value: str | list[str]) -> str:
    if isinstance(value, list) or "\n" in value:
        raise ValueError(f"a placeholder inside a line takes one line of text, not {value!r}")
    return value


def _unrecorded_members(plan: WrapperPlan) -> list[str]:
    """After a group job: a member the group never reached gets a record and a line in its log saying so."""
    if not plan.members:
        return []
    lines = [
        "# Tasks of this group that did not run (the container did not start, the job was killed ...).",
        '[ "$b2box_status" -eq 0 ] && b2box_missing=73 || b2box_missing=$b2box_status',
    ]
    group_log = os.path.join(os.path.dirname(plan.exit_file), "stderr")
    note = say(
        "this task's group job ended (exit %s) before the task ran; see %s",
        "$b2box_status",
        group_log,
        variables=["$b2box_status"],
    )
    for exit_file, stderr in plan.members:
        lines.append(
            f"[ -e {q(exit_file)} ] || {{ {{ {note}; }} 2>> {q(stderr)}; "
            f'b2box_record "$b2box_missing" {q(exit_file)}; }}'
        )
    return lines


def host_python_version() -> str:
    """``3.11``: the host's Python, named when an image cannot load the host's b2box."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"
