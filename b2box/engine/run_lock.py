"""One run at a time per workflow and per result folder, and a run that loses its lock stops before it commits.

Two runs of the same workflow, or of two workflows writing the same result folder, would run tasks twice and
write over each other's files. A run therefore holds a lock file in its workflow folder
(``<task_file_dir>/.b2box/run.lock``) and in every local result folder its tasks write
(``<result_dir>/.b2box-run.lock``): a small JSON file naming its pid, host, start time and a token, created with
``O_CREAT | O_EXCL`` (atomic also on NFS, where ``flock`` may do nothing).

While the run lives, a heartbeat counts up in a file of its own (``<lock>.<token>.beat``) every few seconds and
checks that each lock file still holds its token. A lock is stale, and taken over, when its run is gone: on the
same host its pid no longer runs; written on another host, when its heartbeat counter does not move while this
run watches it for :data:`WATCH` seconds. No two hosts' clocks are ever compared. Taking over happens under a
second exclusive file, so two runs that find the same stale lock cannot both win; a lock file that cannot be read
(empty, broken) is taken over at once.

A run can lose its lock without dying: suspended (Ctrl-Z, a paused VM) for longer than the watch, the run that
took over leaves a note for it (``<lock>.<token>.taken``), which stays after that run ended. Its heartbeat finds the
note, or another token, and from then on the run starts and submits nothing more, and no task of it commits an
output: :meth:`RunLock.commit_refusal` is asked before every commit, also in worker processes, and looks at the
lock files themselves whenever the heartbeat has not confirmed them for a while (as right after a suspension). A
lock file removed with its folder (``task_file_dir`` deleted during a run), without a note, is made again.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import multiprocessing.sharedctypes
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from b2box.api import staging
from b2box.errors import B2BoxError

LOCK_FILE = "run.lock"
RESULT_LOCK_FILE = ".b2box-run.lock"
HEARTBEAT = 2.0  # seconds between heartbeats
WATCH = 10 * HEARTBEAT  # a lock of another host whose heartbeat does not move for this long belongs to a dead run
_UNREADABLE_FOR = 1.0  # a lock file unreadable for this long is broken, not being written
_HOST = socket.gethostname()


class WorkflowLocked(B2BoxError):
    """Another run of the same workflow, or of a workflow writing the same results, holds a lock."""


class LockLost(WorkflowLocked):
    """Another run took this run's lock (it was suspended, or its lock file was removed): the run must stop."""


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
    """The lock file's content; None when there is none, {} when it cannot be read (being written, or broken)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _beats(path: str, token: str) -> int | None:
    try:
        with open(f"{path}.{token}.beat", encoding="ascii") as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return None


class FolderLock:
    """The lock file of one folder (see the module docstring)."""

    def __init__(self, folder: str, name: str, token: str, watch: float = WATCH) -> None:
        self.folder, self.path, self.token, self.watch = folder, os.path.join(folder, name), token, watch
        self.beat = 0

    def acquire(self) -> None:
        """Take the lock, or raise :class:`WorkflowLocked` naming the run that holds it."""
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as error:
            raise B2BoxError(
                f"cannot create {self.folder} ({error.strerror}): make it a folder you can write to"
            ) from None
        for _ in range(50):
            if self.create():
                return
            holder = self._settled_holder()
            if holder is None:
                continue  # released meanwhile: try again
            if holder and not self._gone(holder):
                raise WorkflowLocked(_describe(holder, self.path))
            self._take_over(holder)
        raise WorkflowLocked(f"cannot take the lock {self.path}: it keeps changing hands; try again")

    def create(self) -> bool:
        """Create the lock file with this run's token; False when one exists."""
        mine = {"pid": os.getpid(), "host": _HOST, "start": process_start(os.getpid()), "token": self.token,
                "since": datetime.datetime.now().isoformat(timespec="seconds")}  # fmt: skip
        try:
            os.makedirs(self.folder, exist_ok=True)  # (made again when it was removed during the run)
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except (FileExistsError, FileNotFoundError):  # (not found: a run that ended removed the empty folder)
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(mine))
            handle.flush()
            os.fsync(handle.fileno())
        self.heartbeat()
        return True

    def _settled_holder(self) -> dict[str, Any] | None:
        """The holder; an unreadable file is read again for a moment (it may be being written), then given up as {}."""
        deadline = time.monotonic() + _UNREADABLE_FOR
        while True:
            holder = _read(self.path)
            if holder != {} or time.monotonic() > deadline:
                return holder
            time.sleep(0.1)

    def _gone(self, holder: dict[str, Any]) -> bool:
        """Whether the run that holds the lock is gone: on this host by its pid, else by a heartbeat that stands."""
        if holder.get("host") == _HOST and str(holder.get("pid", "")).isdigit():
            start = process_start(int(holder["pid"]))
            return not start or (bool(holder.get("start")) and start != holder.get("start"))
        token = str(holder.get("token", ""))
        first = _beats(self.path, token)
        deadline = time.monotonic() + self.watch
        while time.monotonic() < deadline:
            time.sleep(HEARTBEAT / 4)
            if _read(self.path) != holder:
                return False  # the lock changed hands meanwhile: look again
            if _beats(self.path, token) != first:
                return False  # its heartbeat moves: that run lives
        return True

    def _take_over(self, stale: dict[str, Any]) -> None:
        """Remove a stale lock, under an exclusive take-over file, only if it is still the one found stale."""
        guard = self.path + ".takeover"
        try:
            descriptor = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _abandoned(guard):  # a take-over that died half-way
                with contextlib.suppress(OSError):
                    os.remove(guard)
            time.sleep(0.1)
            return
        try:
            os.write(descriptor, f"{_HOST} {os.getpid()}".encode())
            if _read(self.path) == stale:
                token = str(stale.get("token", ""))
                if token:  # a note for the run that held it, should it only have been suspended
                    with (
                        contextlib.suppress(OSError),
                        open(f"{self.path}.{token}.taken", "w", encoding="utf-8") as note,
                    ):
                        note.write(json.dumps({"pid": os.getpid(), "host": _HOST, "token": self.token}))
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)
                with contextlib.suppress(OSError):
                    os.remove(f"{self.path}.{token}.beat")
        finally:
            os.close(descriptor)
            os.remove(guard)

    def heartbeat(self) -> None:
        """Count one beat up in this lock's beat file."""
        self.beat += 1
        beat_file = f"{self.path}.{self.token}.beat"
        with contextlib.suppress(OSError):
            with open(beat_file + ".tmp", "w", encoding="ascii") as handle:
                handle.write(str(self.beat))
            os.replace(beat_file + ".tmp", beat_file)

    def holds(self) -> bool:
        """Whether the lock is still this run's: no other run took it over (its note), the file holds the token; a
        file that is gone without a note (removed with its folder) is made again, if nobody else made one."""
        if os.path.exists(self.taken_note):
            return False
        holder = _read(self.path)
        if holder is None:
            return self.create()
        return holder == {} or holder.get("token") == self.token  # {}: being written this moment; looked at again

    def still_held(self) -> bool:
        """:meth:`holds` without making anything: what a worker may ask."""
        holder = _read(self.path)
        return not os.path.exists(self.taken_note) and (holder in (None, {}) or holder.get("token") == self.token)

    @property
    def taken_note(self) -> str:
        return f"{self.path}.{self.token}.taken"

    def release(self) -> None:
        """Give the lock up (only if it is still ours)."""
        holder = _read(self.path)
        if holder and holder.get("token") == self.token and not os.path.exists(self.taken_note):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
        for leftover in (f"{self.path}.{self.token}.beat", self.taken_note):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


class RunLock:
    """The locks of one run (its workflow folder, then its result folders); a context manager."""

    def __init__(self, folder: str, watch: float = WATCH) -> None:
        self.token = secrets.token_hex(8)
        self.watch = watch
        self.locks = [FolderLock(folder, LOCK_FILE, self.token, watch)]
        self.path = self.locks[0].path
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        # shared with the worker processes forked later: [time the locks were last confirmed, 1.0 when lost]
        self._state = multiprocessing.sharedctypes.RawArray("d", 2)
        self.lost = ""

    def acquire(self) -> None:
        """Take the workflow's lock, or raise :class:`WorkflowLocked` naming the run that holds it."""
        self.locks[0].acquire()
        self._confirmed()
        self._start_heartbeat()

    def also(self, result_dirs: Sequence[str]) -> None:
        """Take the locks of the result folders the run's tasks write, too (raises :class:`WorkflowLocked`)."""
        held = {lock.folder for lock in self.locks}
        for folder in sorted(set(result_dirs) - held):
            lock = FolderLock(folder, RESULT_LOCK_FILE, self.token, self.watch)
            lock.acquire()
            self.locks.append(lock)

    def _confirmed(self) -> None:
        self._state[0] = time.time()

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT):
                for lock in list(self.locks):
                    if not lock.holds():
                        self._lose(lock)
                        return
                    lock.heartbeat()
                self._confirmed()

        self._heartbeat = threading.Thread(target=beat, name="b2box-run-lock", daemon=True)
        self._heartbeat.start()

    def _lose(self, lock: FolderLock) -> None:
        holder = _read(lock.taken_note) or _read(lock.path) or {}
        self.lost = (
            f"this run lost its lock {lock.path} to another run ({_who(holder)}): it was suspended for long, or the "
            "lock file was removed. It stops here without starting or committing anything more; the other run "
            "goes on with the workflow"
        )
        self._state[1] = 1.0

    def commit_refusal(self) -> str:
        """Why an output must not be committed now (the run lost a lock), or empty. Cheap while the heartbeat
        confirms the locks; after a pause longer than two heartbeats (a suspension), the lock files are read."""
        if self._state[1]:
            return self.lost or "this run lost its lock to another run"
        if time.time() - self._state[0] <= 2 * HEARTBEAT:
            return ""
        for lock in self.locks:
            if not lock.still_held():
                holder = _read(lock.taken_note) or _read(lock.path) or {}
                return f"this run lost its lock {lock.path} to another run ({_who(holder)})"
        return ""

    def release(self) -> None:
        """Give the locks up (only those still ours); the workflow's lock folder goes too when nothing else is in it
        (and its parent, ``task_file_dir``, when that is empty then), so a plain run leaves no empty folders."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)  # a beat under way would write its file again after the release
        for lock in reversed(self.locks):
            lock.release()
        folder = self.locks[0].folder
        for empty in (folder, os.path.dirname(folder)):
            try:
                os.rmdir(empty)
            except OSError:  # not empty (jobs' files, another run's lock) or gone: left as it is
                break

    def __enter__(self) -> RunLock:
        global _current
        self.acquire()
        _current = self
        staging.commit_guard = self.commit_refusal
        return self

    def __exit__(self, *exc: object) -> None:
        global _current
        _current = None
        staging.commit_guard = None
        self.release()


_current: RunLock | None = None


def current() -> RunLock | None:
    """The locks of the run in progress in this process (or the one this worker was forked from)."""
    return _current


def check_held() -> None:
    """Raise :class:`LockLost` when the run in progress lost its lock (before it starts or submits anything)."""
    if _current is not None:
        refusal = _current.commit_refusal()
        if refusal:
            raise LockLost(refusal)


def still_held() -> bool:
    """Whether the run in progress still holds its lock (asked by a worker before it begins a task it was handed
    while running another: a run that lost its lock starts nothing more)."""
    return _current is None or not _current.commit_refusal()


def _abandoned(guard: str) -> bool:
    """Whether a take-over file belongs to a run that died taking over: on this host its pid is gone; written on
    another host, it has stood for longer than a watch (a take-over lasts milliseconds)."""
    try:
        with open(guard, encoding="ascii") as handle:
            host, _, pid = handle.read().strip().rpartition(" ")
        age = time.time() - os.stat(guard).st_mtime
    except OSError:
        return False
    if host == _HOST and pid.isdigit():
        return not process_start(int(pid))
    return age > WATCH


def _who(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"


def _describe(holder: dict[str, Any], path: str) -> str:
    return (
        f"another run is running ({_who(holder)}) and holds {path}: two runs at once would run tasks twice. "
        f"Wait for it to end or stop it; if that process is gone for sure, remove {path}."
    )
