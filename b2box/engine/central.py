"""Show a run in a central ``luigid``: every task's state is sent to its scheduler API.

b2box schedules a run itself (on this machine or on a batch system) and
tells luigid what happens, so that luigid's visualiser shows the run live as
b2luigi users know it, ``--batch`` runs included. The states are sent from a
thread of their own, newest state per task only: a slow luigid never slows
the run down, and one that stops answering is sent the latest states again
once it is back.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from b2box.engine.graph import Node, State, TaskGraph

# luigid forgets a worker it has not heard of for 60 s (worker_disconnect_delay) and fails its running tasks
_HEARTBEAT_SECONDS = 20.0
_RETRY_SECONDS = 5.0
_FLUSH_SECONDS = 30.0

# luigid's names for b2box's states; a blocked task is pending there, as luigi's own worker leaves it
_LUIGID_STATUS = {
    State.COMPLETE: "DONE",
    State.DONE: "DONE",
    State.PENDING: "PENDING",
    State.RUNNING: "RUNNING",
    State.FAILED: "FAILED",
    State.MISSING: "PENDING",
    State.BLOCKED: "PENDING",
}


class CentralSchedulerUnreachable(RuntimeError):
    """luigid did not answer when the run started."""


class LuigidClient:
    """luigid's JSON API (``POST /api/<method>`` with the arguments as JSON in the form field ``data``)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        if "://" not in host:
            host = f"http://{host}"
        self.url = f"{host.rstrip('/')}:{port}" if port else host.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, **arguments: Any) -> Any:
        body = urllib.parse.urlencode({"data": json.dumps(arguments)}).encode()
        request = urllib.request.Request(f"{self.url}/api/{method}", data=body)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read().decode()).get("response")


def task_record(node: Node, worker: str) -> dict[str, Any]:
    """The ``add_task`` arguments luigi's own worker would send for ``node`` in its current state."""
    task = node.task
    try:
        params = task.to_str_params(only_significant=True, only_public=True)
    except Exception:  # parameters that cannot be serialized: the task id still identifies the task
        params = {}
    record: dict[str, Any] = {
        "worker": worker,
        "task_id": node.task_id,
        "status": _LUIGID_STATUS[node.state],
        "runnable": node.state is not State.MISSING,
        "deps": [dep.task_id for dep in node.deps],
        "family": node.family,
        "module": type(task).__module__,
        "params": params,
        "priority": int(getattr(task, "priority", 0) or 0),
    }
    if node.error and node.state is State.FAILED:
        record["expl"] = json.dumps(node.error)
    return record


class CentralSchedulerReporter:
    """A run reporter that forwards every state change to luigid (see the module docstring)."""

    def __init__(self, host: str, port: int, workflow: str, note: Any = None) -> None:
        self.client = LuigidClient(host, port)
        # one worker name per workflow (its state folder), the same in every run: luigid accepts a task's end
        # only from the worker it saw start it, and a task left running by a killed run is finished by the next
        self.worker = f"b2box {getpass.getuser()}@{socket.gethostname()}:{workflow}"
        self._note = note or (lambda text: None)
        self._outbox: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def connect(self) -> None:
        """Register with luigid; raise :class:`CentralSchedulerUnreachable` naming the address if it is not there."""
        info = {"host": socket.gethostname(), "username": getpass.getuser(), "pid": os.getpid(), "b2box": True}
        try:
            self.client.call("add_worker", worker=self.worker, info=info)
        except (OSError, ValueError) as problem:
            raise CentralSchedulerUnreachable(
                f"the central scheduler (luigid) at {self.client.url} does not answer ({problem}): "
                "start luigid there, or correct --scheduler-host/--scheduler-port, or run without them"
            ) from None

    def begin(self, graph: TaskGraph) -> None:
        with self._lock:
            for node in graph.nodes.values():
                self._outbox[node.task_id] = task_record(node, self.worker)
        self._thread = threading.Thread(target=self._send_forever, name="b2box-luigid", daemon=True)
        self._thread.start()
        self._wake.set()

    def changed(self, node: Node) -> None:
        with self._lock:
            self._outbox.pop(node.task_id, None)  # re-queued at the end: dependencies are sent before dependents
            self._outbox[node.task_id] = task_record(node, self.worker)
        self._wake.set()

    def note(self, text: str) -> None:
        pass

    def end(self, graph: TaskGraph) -> None:
        """Send what is left (for at most 30 s) and stop."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=_FLUSH_SECONDS)
        with self._lock:
            left = len(self._outbox)
        if left:
            self._note(f"b2box: {left} task state(s) could not be sent to luigid at {self.client.url}")

    def _send_forever(self) -> None:
        give_up_at: float | None = None
        while True:
            self._wake.clear()
            sent = self._send_outbox()
            if self._stopping.is_set():
                give_up_at = give_up_at or time.monotonic() + _FLUSH_SECONDS
                if sent or time.monotonic() > give_up_at:
                    return
            woken = self._wake.wait(_HEARTBEAT_SECONDS if sent else _RETRY_SECONDS)
            if sent and not woken:
                self._heartbeat()

    def _send_outbox(self) -> bool:
        """Send every queued state; False when luigid stopped answering (what is unsent stays queued)."""
        while True:
            with self._lock:
                if not self._outbox:
                    return True
                task_id, record = next(iter(self._outbox.items()))
            try:
                self.client.call("add_task", **record)
            except (OSError, ValueError) as problem:
                self._report_trouble(problem)
                return False
            self._recovered()
            with self._lock:
                if self._outbox.get(task_id) is record:  # not changed again meanwhile
                    del self._outbox[task_id]

    def _heartbeat(self) -> None:
        try:
            self.client.call("ping", worker=self.worker)
        except (OSError, ValueError) as problem:
            self._report_trouble(problem)
        else:
            self._recovered()

    def _report_trouble(self, problem: Exception) -> None:
        if not self._failing:
            self._failing = True
            self._note(
                f"b2box: luigid at {self.client.url} stopped answering ({problem}); the run goes on and "
                "luigid is sent the latest states once it answers again"
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            self._note(f"b2box: luigid at {self.client.url} answers again")
