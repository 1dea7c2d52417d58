"""A warm process that local jobs without a container are forked from.

Starting Python and importing luigi costs a job on this machine about a
quarter of a CPU second, which is most of what a small local job costs. The
local backend therefore starts one job server per run, forked from the
scheduler after the workflow script has been loaded. A job's wrapper still
runs as usual; its last step, instead of starting a new Python, hands its
stdout/stderr to the server over a Unix socket (:mod:`b2box.job.client`, ~20 ms), the server
forks a child that runs the task exactly as a job process would
(:func:`b2box.job.run.run`) and reports its exit status back to the client, which
exits with it. If the client goes away (the job is cancelled), the child is
killed. If the server is not there, the wrapper starts Python as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from b2box import usage
from b2box.engine.run_lock import process_start
from b2box.job.client import ACCEPTED

ENV_VAR = "B2BOX_JOB_SERVER"


@dataclass(eq=False)
class _Request:
    connection: socket.socket
    child: int
    watch: usage.Watch
    job: str  # its job.json
    job_id: str


def _run_child(
    connection: socket.socket, listener: socket.socket, descriptors: list[int], request: dict[str, Any]
) -> None:
    """In the forked child: become the job process and never return."""
    code = 1
    try:
        usage.die_with_parent()  # a job server that dies takes its jobs along: none may run on unseen, or run twice
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        listener.close()
        connection.close()
        for target, descriptor in enumerate(descriptors[:3]):
            os.dup2(descriptor, target)
        for descriptor in descriptors:
            if descriptor > 2:
                os.close(descriptor)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        os.chdir(request["cwd"])  # the job's folder and variables are the wrapper's, not the server's
        os.environ.clear()
        os.environ.update(request["env"])
        from b2box.job.files import JobSpec
        from b2box.job.run import run, use_submitted_settings

        spec = JobSpec.read(request["job"])
        use_submitted_settings(spec)
        code = run(spec, request["job_id"])
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """A request: one byte carrying stdin/stdout/stderr, then a line of JSON (with the job's environment)."""
    _, descriptors, _, _ = socket.recv_fds(connection, 1, 3)
    message = b""
    while not message.endswith(b"\n"):
        more = connection.recv(1 << 16)
        if not more:
            break
        message += more
    return json.loads(message), descriptors


def _stop_children(requests: dict[int, _Request]) -> None:
    """Leaving: no job may outlive the server (SIGTERM, then SIGKILL after five seconds)."""
    for pid in requests:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    remaining = set(requests)
    while remaining:
        for pid in list(remaining):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            remaining.discard(pid)
        if remaining and time.monotonic() > deadline:
            for pid in remaining:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        if remaining:
            time.sleep(0.02)


def serve(listener: socket.socket, parent: int) -> None:
    """The server loop: one forked child per request.

    It ends when the parent removes the socket file (stopping the jobs it runs), or, once the parent is gone
    (killed, or it left jobs running on purpose), when the last of its jobs has ended: it accepts no new ones.
    """
    requests: dict[int, _Request] = {}
    draining = False
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def wake(*_: Any) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(wake_write, b"x")

    signal.signal(signal.SIGCHLD, wake)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scheduler decides what Ctrl-C stops
    while True:
        watched: list[socket.socket | int] = [listener, wake_read, *(r.connection for r in requests.values())]
        readable, _, _ = select.select(watched, [], [], 1.0)
        if not draining and os.getppid() != parent:
            draining = True  # the submitter is gone: finish what runs, accept nothing new
            with contextlib.suppress(OSError):
                os.remove(listener.getsockname())
        elif not draining and not os.path.exists(listener.getsockname()):
            _stop_children(requests)
            return
        if draining and not requests:
            return
        if wake_read in readable:
            os.read(wake_read, 4096)
        for waiting in list(requests.values()):
            if waiting.connection in readable and not waiting.connection.recv(1, socket.MSG_PEEK):
                with contextlib.suppress(ProcessLookupError):  # the client was cancelled: stop its job
                    os.kill(waiting.child, signal.SIGTERM)
        while requests:
            try:
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            finished = requests.pop(pid, None)
            if finished is not None:
                _report(finished, status, rusage)
        if listener in readable and not draining:
            connection, _ = listener.accept()
            try:
                request, descriptors = _receive(connection)
            except (OSError, ValueError):
                connection.close()  # a broken request: its client falls back to starting Python itself
                continue
            watch = usage.Watch()
            child = os.fork()
            if child == 0:
                _run_child(connection, listener, descriptors, request)
            for descriptor in descriptors:
                os.close(descriptor)
            with contextlib.suppress(OSError):
                connection.sendall(ACCEPTED)  # from now on the client must not start the task itself
            requests[child] = _Request(connection, child, watch, str(request["job"]), str(request["job_id"]))


def _report(finished: _Request, status: int, rusage: Any) -> None:
    """A job has ended: record what it used, then tell its client how it ended."""
    found = usage.about_job(finished.job)
    if found is not None:
        provenance, about = found
        code = usage.exit_status(status)
        usage.record(provenance, finished.watch.usage(status, rusage), code, dict(about, job_id=finished.job_id),
                     finished.watch)  # fmt: skip
    with contextlib.suppress(OSError):
        finished.connection.sendall(f"{usage.exit_status(status)}\n".encode())
    finished.connection.close()


def _detach_output() -> None:
    """The server writes nothing: its stdin/stdout/stderr (the scheduler's, perhaps a pipe someone waits on to
    close) become /dev/null; each job gets its own from its client."""
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)


_FOLDER_PREFIX = "b2box-jobs-"
_PID_FILE = "server.pid"


def remove_abandoned_folders() -> None:
    """Remove the socket folders of servers that are gone (a server killed outright cannot remove its own)."""
    base = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            folder = os.path.join(base, name)
            if (
                not name.startswith(_FOLDER_PREFIX)
                or not os.path.isdir(folder)
                or os.stat(folder).st_uid != os.getuid()
            ):
                continue
            try:
                with open(os.path.join(folder, _PID_FILE), encoding="ascii") as handle:
                    pid = int(handle.read().strip())
            except (OSError, ValueError):
                continue  # being made this moment, or not one of ours
            if not process_start(pid):
                shutil.rmtree(folder, ignore_errors=True)


class JobServer:
    """Starts the server process; removing its socket file stops it. The server removes its folder when it ends."""

    def __init__(self) -> None:
        remove_abandoned_folders()
        self.folder = tempfile.mkdtemp(prefix=_FOLDER_PREFIX)
        self.path = os.path.join(self.folder, "server.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(128)
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.setpgid(0, 0)  # Ctrl-C in the terminal reaches the scheduler, not the server
                _detach_output()
                serve(listener, parent)
            finally:
                shutil.rmtree(self.folder, ignore_errors=True)  # also when its submitter was killed long ago
                os._exit(0)
        listener.close()
        with open(os.path.join(self.folder, _PID_FILE), "w", encoding="ascii") as handle:
            handle.write(str(self.pid))

    def stop(self) -> None:
        """Remove the socket file; the server notices within a second, stops its jobs and exits."""
        with contextlib.suppress(OSError):
            os.remove(self.path)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)
