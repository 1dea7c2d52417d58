"""Whether a result made earlier is what today's run would make, aspect by aspect, and what to do about it.

A complete task whose recorded identity differs from the one it would have now is *stale*. The ``rerun_when``
setting says which differences run it again (default: ``environment`` and ``inputs``, so results match the
environment that is declared and the inputs they were made from); other differences (``code`` by default) are
reported, and the result stays. A different ``parameters`` digest means another task made these outputs: that
always runs again. A result without an identity (made by b2luigi, or an older b2box) is *unknown*: never run again
for that, only shown, and adoptable (``--accept``).
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import luigi
import luigi.task

from b2box.errors import B2BoxError
from b2box.results import records
from b2box.results.identity import ASPECTS, Identity, digest, identity_of
from b2box.settings.general import Results
from b2box.settings.resolved import settings_of

UNKNOWN = "unknown"
UNKNOWN_REASON = "made without a record of what made it (by b2luigi, or an older b2box)"


@dataclass(frozen=True)
class Verdict:
    """How a complete result compares with what today's run would make."""

    differing: tuple[str, ...]  # the aspects that differ (empty: up to date)
    reasons: str  # for people: "environment docker A → docker B; input Number(index=3) remade"
    rerun: bool


def record(task: Any, identity: Identity, adopted_from: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What is kept beside a result: its task (id, and name for people), its identity, when and where it was made
    (or adopted)."""
    kept: dict[str, Any] = {
        "task": str(task.task_id),
        "name": repr(task),
        "identity": identity.record(),
        "made": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
    }
    if adopted_from is not None:
        kept["adopted_from"] = dict(adopted_from)
    return kept


@dataclass
class ResultCheck:
    """One run's view of its results: each finished task's identity digest (recorded, or made in this run), the
    verdicts on complete results, and the book that reads and keeps the records."""

    adopting: bool = False  # --accept: nothing runs again, stale results are adopted
    book: records.ResultBook = field(default_factory=records.ResultBook)
    digests: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # why some results could not be checked
    _running: dict[str, tuple[str, Identity]] = field(default_factory=dict)  # task id -> (first output, identity)
    _through: dict[str, tuple[str, ...]] = field(default_factory=dict)  # task id without an identity -> its inputs

    def judge(
        self, task: Any, first_output: str, inputs: Sequence[str], name_of: Callable[[str], str]
    ) -> Verdict | None:
        """Check a complete result (``inputs``: the ids of the tasks it requires; ``name_of`` names one for people):
        None when it is what this run would make, else the verdict."""
        task_id = str(task.task_id)
        if not first_output:
            self._pass_through(task_id, inputs)
            return None
        kept = self.book.aspects(settings_of(task).folders.result_dir, first_output)
        if kept is None:  # made without a record of what made it
            self.digests[task_id] = f"{UNKNOWN}:{task_id}"
            verdict = self.verdicts[task_id] = Verdict(differing=(UNKNOWN,), reasons=UNKNOWN_REASON, rerun=False)
            return verdict
        self.digests[task_id] = digest(*kept)
        try:
            current = identity_of(task, [(required_id, self.digest_of(required_id)) for required_id in inputs])
        except B2BoxError as problem:
            self.problems.append(str(problem))
            return None
        differing = tuple(aspect for aspect, before in zip(ASPECTS, kept, strict=True)
                          if _differs(aspect, before, getattr(current, aspect)))  # fmt: skip
        if not differing:
            return None
        rerun = not self.adopting and ("parameters" in differing or bool(set(differing) & set(self._rerun_when(task))))
        recorded = Identity.from_record((records.read(first_output) or {}).get("identity", {})) or Identity(*kept)
        reasons = _reasons(task, recorded, current, differing, name_of)
        verdict = self.verdicts[task_id] = Verdict(differing=differing, reasons=reasons, rerun=rerun)
        return verdict

    def about_to_run(self, task: Any, first_output: str, inputs: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
        """The (identity file, record) to keep beside the task's outputs when it runs now; None when it has no local
        output, or its environment cannot be resolved here (which the run reports where it needs the image)."""
        if not first_output:
            self._pass_through(str(task.task_id), inputs)  # its inputs may have been remade in this run
            return None
        try:
            identity = identity_of(task, [(required_id, self.digest_of(required_id)) for required_id in inputs])
        except B2BoxError:
            return None
        self._running[str(task.task_id)] = (first_output, identity)
        return records.identity_file(first_output), record(task, identity)

    def finished(self, task: Any, first_output: str = "", usage: dict[str, Any] | None = None) -> None:
        """The task ran and committed its outputs (and the record beside them, which is read for what the task used
        unless its worker said: ``usage``); a job of an earlier run that this run followed to its end brought the
        record it was submitted with, which is read."""
        running = self._running.pop(str(task.task_id), None)
        if running is not None:
            record = {"usage": usage} if usage is not None else records.read(running[0])
            self.made(task, *running, usage=records.usage_in(record))
        elif first_output:
            kept = self.book.aspects(settings_of(task).folders.result_dir, first_output)
            if kept is not None:
                self.digests[str(task.task_id)] = digest(*kept)

    def _pass_through(self, task_id: str, inputs: Sequence[str]) -> None:
        """A task without a local output to keep an identity beside (a WrapperTask, remote outputs) passes on the
        identities of its inputs, as they are when asked (they may be remade in this run), so a remade input still
        reaches the results made from such a task."""
        self._through[task_id] = tuple(sorted(inputs))

    def digest_of(self, task_id: str) -> str:
        """The identity digest of a finished task, as its dependents record it."""
        inputs = self._through.get(task_id)
        if inputs is not None:
            return digest(task_id, *(self.digest_of(required_id) for required_id in inputs))
        return self.digests.get(task_id, f"{UNKNOWN}:{task_id}")

    def made(self, task: Any, first_output: str, identity: Identity, usage: records.Usage | None = None) -> None:
        """A task's result was made in this run with ``identity`` (its job wrote the record beside it), using
        ``usage`` where its record says."""
        self.digests[str(task.task_id)] = identity.digest
        if first_output:
            self.book.note(settings_of(task).folders.result_dir, first_output, identity.aspects, usage)

    def adopt(self, task: Any, first_output: str, inputs: Sequence[str]) -> None:
        """``--accept``: the identity the task would have now becomes its result's; the one it had is kept as where
        it came from (empty for a result made without a record)."""
        identity = identity_of(task, [(required_id, self.digest_of(required_id)) for required_id in inputs])
        old = records.read(first_output) or {}
        kept = record(task, identity, adopted_from=old.get("identity", {}))
        kept["outputs"] = old.get("outputs") or _local_outputs(task, first_output)
        records.write(records.identity_file(first_output), kept)
        self.made(task, first_output, identity)

    @staticmethod
    def _rerun_when(task: Any) -> tuple[str, ...]:
        return tuple(settings_of(task).group(Results).rerun_when)


def _local_outputs(task: Any, first_output: str) -> list[str]:
    """The task's local outputs, relative to its first output's folder (as a job's commit records them)."""
    folder = os.path.dirname(os.path.abspath(first_output))
    paths = [str(target.path) for target in luigi.task.flatten(task.output()) if isinstance(target, luigi.LocalTarget)]
    return sorted(os.path.relpath(os.path.abspath(path), folder) for path in paths)


def _differs(aspect: str, before: str, now: str) -> bool:
    """Whether an aspect's digests differ; code whose source could not be read (on either side) is not compared."""
    return before != now and not (aspect == "code" and not (before and now))


def _reasons(task: Any, recorded: Identity, current: Identity, differing: tuple[str, ...],
             name_of: Callable[[str], str]) -> str:  # fmt: skip
    """What changed, in words: 'environment docker A → docker B; run() changed; input Number(index=3) remade'."""
    said = []
    if "environment" in differing:
        if recorded.environment_label != current.environment_label:
            said.append(f"environment {recorded.environment_label} → {current.environment_label}")
        else:
            said.append("environment changed (env_script, variables or binds)")
    if "code" in differing:
        said.append(f"{task.task_family}'s code changed")
    if "parameters" in differing:
        said.append("another task's parameters made these outputs")
    if "inputs" in differing:
        before, now = dict(recorded.input_digests), dict(current.input_digests)
        changed = [name_of(task_id) for task_id, value in now.items() if before.get(task_id) != value]
        gone = [task_id for task_id in before if task_id not in now]
        if changed or gone:
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            said.append(f"input {shown} remade" if shown else "its inputs changed")
        else:
            said.append("its inputs changed")
    return "; ".join(said)
