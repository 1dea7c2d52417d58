"""The wrapper: one readable bash script per job, run unchanged by every backend.

Outside the container it enters the working folder, (for pinned SIFs)
checks the image digest, starts the container with every needed folder bound
at the same path, and finally records the exit status and end time in
``exit.json`` beside the logs, so the result of a job is known even when the
batch system has forgotten it. Inside the container (the same file, called
with ``--inside``) it sources the ``env_script``, exports the variables and
starts the task with b2box.

Every value is quoted with ``shlex.quote``: spaces, quotes, ``$()``,
backticks, newlines and non-ASCII text arrive unchanged and nothing is
executed by accident. The script never prints the environment.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from b2box.batch.jobserver import CLIENT, EXIT_SERVER_LOST

EXIT_BAD_ENVIRONMENT = 72
EXIT_DIGEST_MISMATCH = 74
EXIT_NO_WORKING_DIR = 70
EXIT_ENV_SCRIPT = 71

# Runs inside the job's Python; kept Python-2-compatible so an image with an ancient python3
# gets a clear message instead of a syntax error.
_BOOTSTRAP = r"""import sys
image, host_version, site_dirs = sys.argv[1], sys.argv[2], [d for d in sys.argv[3].split(":") if d]
def fail(message):
    sys.stderr.write("b2box: " + message + "\n")
    sys.exit(72)
# A job never talks to a central scheduler: while luigi is imported, keep its HTTP client's libraries away
# (luigi then falls back to urllib); that halves a job's start in an image. The task itself may import them.
unused = [name for name in ("requests", "requests_unixsocket", "tornado") if name not in sys.modules]
for name in unused:
    sys.modules[name] = None
def release():
    for name in unused:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
try:
    import b2box.job
except ImportError as first:
    here = "%d.%d" % sys.version_info[:2]
    if sys.version_info < (3, 11) or not site_dirs:
        fail("%s: %s is Python %s without b2box (%s); b2box needs Python 3.11 or newer to be mounted from "
             "the host (which runs %s). Fix: run 'b2box build-env' to add b2box to the image, or pip "
             "install b2box inside it." % (image, sys.executable, here, first, host_version))
    import site
    for folder in site_dirs:
        site.addsitedir(folder)
    try:
        import b2box.job
    except ImportError as second:
        fail("%s: the host's b2box does not load in this image (%s). Fix: run 'b2box build-env' to "
             "add b2box to the image, or pip install b2box inside it." % (image, second))
release()
b2box.job.main(sys.argv[4:])
"""


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
    job_server_python: str = ""  # without a container: the Python that may use a local job server
    # a group job (tasks_per_job): each member's (exit record, stderr), so none is left without a record
    members: Sequence[tuple[str, str]] = ()
    # no shared filesystem (b2box.batch.transfer): these folders live under $B2BOX_ROOT on the worker node and
    # are bound from there at their usual paths into the container
    rooted_binds: Sequence[str] = ()


def q(value: str) -> str:
    """Quote one word for bash."""
    return shlex.quote(str(value))


def words(values: Sequence[str]) -> str:
    return " ".join(q(value) for value in values)


def say(template: str, *args: str, variables: Sequence[str] = ()) -> str:
    """A bash command printing a b2box message to stderr; values are passed as quoted printf arguments, except
    the shell ``variables`` (such as ``$b2box_status``) among them, which are expanded when the message prints."""
    command = f"printf {q('b2box: ' + template + chr(92) + 'n')} {words(args)} >&2"
    for variable in variables:
        command = command.replace(q(variable), f'"{variable}"')
    return command


def _inside(plan: WrapperPlan) -> list[str]:
    python = plan.python[0]
    bootstrap_args = [plan.image_label, plan.host_python_version, ":".join(plan.host_site_dirs), plan.job_file]
    lines = [
        "inside() {",
        "    # Runs inside the container (or directly, without one); $1 is the batch job id.",
        f"    cd -- {q(plan.working_dir)} || {{ {say('cannot enter the working folder %s', plan.working_dir)}; "
        f"exit {EXIT_NO_WORKING_DIR}; }}",
    ]
    if plan.env_script:
        lines.append(f"    source {q(plan.env_script)} || {{ {say('env_script %s failed', plan.env_script)}; "
                     f"exit {EXIT_ENV_SCRIPT}; }}")
    for name, value in sorted(plan.env.items()):
        lines.append(f"    export {name}={q(value)}")
    missing_python = say("image %s has no %s: install Python in it or set the 'executable' setting",
                         plan.image_label, python)
    if plan.job_server_python:
        lines += [
            "    if [ -S \"${B2BOX_JOB_SERVER:-}\" ]; then",
            "        # A b2box job server on this machine forks the task from a warm process (b2box.batch.jobserver);",
            f"        # when it is gone ({EXIT_SERVER_LOST}), Python is started as usual below.",
            f"        {q(plan.job_server_python)} -I -S -c {q(CLIENT)} \"$B2BOX_JOB_SERVER\" {q(plan.job_file)} \"$1\"",
            "        b2box_client=$?",
            f"        [ \"$b2box_client\" -eq {EXIT_SERVER_LOST} ] || exit \"$b2box_client\"",
            "    fi",
        ]
    lines += [
        f"    command -v {q(python)} >/dev/null 2>&1 || {{ {missing_python}; exit {EXIT_BAD_ENVIRONMENT}; }}",
        f"    exec {words(plan.python)} -c {q(_BOOTSTRAP)} {words(bootstrap_args)} \"$1\"",
        "}",
    ]
    return lines


def _verify_digest(plan: WrapperPlan) -> list[str]:
    if not (plan.sif_to_verify and plan.pinned_digest):
        return []
    expected = plan.pinned_digest.removeprefix("sha256:")
    refuse = say("refusing to run: %s is sha256:%s, not the pinned sha256:%s. Rebuild or re-lock the image "
                 "(b2box build-env).", plan.sif_to_verify, "$b2box_digest", expected,
                 variables=["$b2box_digest"])
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


def host_path(plan: WrapperPlan, path: str) -> str:
    """A path outside the container: under $B2BOX_ROOT when the job brought its folders along."""
    return ROOT + q(path) if plan.rooted_binds else q(path)


def _container_words(plan: WrapperPlan) -> str:
    """The container command; the sources of ``rooted_binds`` are the folders' copies under $B2BOX_ROOT."""
    rendered = []
    for previous, word in zip(["", *plan.container_command], plan.container_command, strict=False):
        rooted = previous == "--bind" and word.split(":", 1)[0] in plan.rooted_binds
        rendered.append(ROOT + q(word) if rooted else q(word))
    return " ".join(rendered)


def render(plan: WrapperPlan) -> str:
    """The wrapper's text."""
    start = f'{_container_words(plan)} "$b2box_job_id"' if plan.container_command else '(inside "$b2box_job_id")'
    lines = [
        "#!/bin/bash",
        f"# b2box job: {plan.title}",
        f"# Runs in: {plan.image_label}",
        "# Written by b2box for this job; change the task's settings, not this file.",
        "set -u",
        "",
        *_inside(plan),
        'if [ "${1:-}" = "--inside" ]; then inside "${2:-}"; fi',
        "",
        "b2box_record() {",
        "    # The job's own record of how it ended, known even when the batch system has forgotten the job.",
        "    local target",
        f'    if [ $# -ge 2 ]; then target=$2; else target={host_path(plan, plan.exit_file)}; fi',
        "    printf '{\"exit_code\": %d, \"end_time\": \"%s\", \"host\": \"%s\"}\\n' \"$1\" "
        '"$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$(hostname)" > "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target"',
        "}",
        f"cd -- {host_path(plan, plan.working_dir)} || "
        f"{{ {say('cannot enter the working folder %s', plan.working_dir)}; "
        f"b2box_record {EXIT_NO_WORKING_DIR}; exit {EXIT_NO_WORKING_DIR}; }}",
        'b2box_job_id="${B2BOX_JOB_ID:-${LSB_JOBID:-${SLURM_JOB_ID:-local-$$}}}"',
        *_verify_digest(plan),
        start,
        "b2box_status=$?",
        *_unrecorded_members(plan),
        'b2box_record "$b2box_status"',
        'exit "$b2box_status"',
        "",
    ]
    return "\n".join(lines)


def _unrecorded_members(plan: WrapperPlan) -> list[str]:
    """After a group job: a member the group never reached gets a record and a line in its log saying so."""
    if not plan.members:
        return []
    lines = ["# Tasks of this group that did not run (the container did not start, the job was killed ...).",
             '[ "$b2box_status" -eq 0 ] && b2box_missing=73 || b2box_missing=$b2box_status']
    group_log = os.path.join(os.path.dirname(plan.exit_file), "stderr")
    note = say("this task's group job ended (exit %s) before the task ran; see %s", "$b2box_status", group_log,
               variables=["$b2box_status"])
    for exit_file, stderr in plan.members:
        lines.append(f"[ -e {q(exit_file)} ] || {{ {{ {note}; }} 2>> {q(stderr)}; "
                     f'b2box_record "$b2box_missing" {q(exit_file)}; }}')
    return lines


def host_python_version() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"
