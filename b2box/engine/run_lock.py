"""One run per workflow folder at a time.

Two runs of the same workflow would run every task twice and write over
each other's wrappers, exit records and logs. A run therefore holds
``<task_file_dir>/.b2box/run.lock`` while it runs: a small JSON file naming
its pid, host, start time and a token, created with ``O_CREAT | O_EXCL``
(atomic also on NFS, where ``flock`` may do nothing) and touched every few
seconds while the run lives.

A lock is stale, and is taken over, when its process is gone: on the same
host its pid no longer runs (or is another process with the same pid); on
another host, where no pid can be checked, when the file has not been
touched for :data:`STALE_AFTER` seconds. Taking over happens under a second
exclusive file, so two runs that find the same stale lock cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import socket
import threading
import time
from typing import Any

from b2box.errors import B2BoxError

LOCK_FILE = "run.lock"
HEARTBEAT = 5.0  # seconds between touches of the lock file
STALE_AFTER = 60.0  # a lock of another host untouched this long belongs to a dead run
_HOST = socket.gethostname()


class WorkflowLocked(B2BoxError):
    """Another run of the same workflow holds its lock."""


def process_start(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks after boot), empty when there is no such process or it has
    ended (a zombie, not reaped yet): with the pid it names one process, never a later one that reuses the pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return ""
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else ""


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # being written this very moment, or broken: judged by its age
    return data if isinstance(data, dict) else {}


def is_stale(holder: dict[str, Any], age: float) -> bool:
    """Whether the run that wrote ``holder`` is gone (``age``: seconds since the file was last touched)."""
    if holder.get("host") == _HOST and str(holder.get("pid", "")).isdigit():
        start = process_start(int(holder["pid"]))
        return not start or (bool(holder.get("start")) and start != holder.get("start"))
    return age > STALE_AFTER


class RunLock:
    """The lock of one workflow folder; a context manager that holds it for the run."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self.token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`WorkflowLocked` naming the run that holds it."""
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as error:
            raise B2BoxError(
                f"cannot create {self.folder} ({error.strerror}): make task_file_dir a folder you can write to"
            ) from None
        for _ in range(50):
            if self._create():
                self._start_heartbeat()
                return
            holder = _read(self.path)
            if holder is None:
                continue  # released meanwhile: try again
            try:
                age = time.time() - os.stat(self.path).st_mtime
            except FileNotFoundError:
                continue
            if not is_stale(holder, age):
                raise WorkflowLocked(_describe(holder, self.path))
            self._take_over(holder)
        raise WorkflowLocked(f"cannot take the lock {self.path}: it keeps changing hands; try again")

    def _create(self) -> bool:
        mine = {
            "pid": os.getpid(),
            "host": _HOST,
            "start": process_start(os.getpid()),
            "token": self.token,
            "since": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(mine, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _take_over(self, stale: dict[str, Any]) -> None:
        """Remove a stale lock, under an exclusive take-over file, only if it is still the one found stale."""
        guard = self.path + ".takeover"
        try:
            descriptor = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            with contextlib.suppress(OSError):  # a take-over that died half-way: clear it after a while
                if time.time() - os.stat(guard).st_mtime > STALE_AFTER:
                    os.remove(guard)
            time.sleep(0.1)
            return
        try:
            if _read(self.path) == stale:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
        finally:
            os.close(descriptor)
            os.remove(guard)

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT):
                with contextlib.suppress(OSError):
                    os.utime(self.path)

        self._heartbeat = threading.Thread(target=beat, name="b2box-run-lock", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        """Give the lock up (only if it is still ours)."""
        self._stop.set()
        holder = _read(self.path)
        if holder and holder.get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(holder: dict[str, Any], path: str) -> str:
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"
    return (
        f"another run of this workflow is running ({who}): two runs at once would run every task twice. Wait for "
        f"it to end or stop it; if that process is gone, remove {path}."
    )
