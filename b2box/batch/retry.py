"""One retry policy for every call to a batch system: bounded exponential backoff, a time limit, a timeout.

Busy schedulers fail calls every day ("Socket timed out" from a Slurm
controller, a schedd that does not answer). Every submit, status query and
removal goes through :class:`BatchCalls`: a call that fails for a passing
reason is tried again after 1, 2, 4 ... seconds (at most a minute apart),
each retry reported on screen once, until it succeeds or the outage has
lasted ``batch_retry_limit`` seconds. Only then does the run stop, with
:class:`BatchSystemUnavailable`: its jobs are left as they are and the next
run re-attaches to them. Every command runs with a timeout
(``batch_command_timeout``), so a hung client cannot hang the run.

Which failures pass: a status query or a removal is always worth another
try; a submission only when the batch system's answer says it was not
reached (a timeout, a refused connection ...), since other errors (an
unknown partition, a bad option) will not go away by waiting.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from b2box.errors import B2BoxError
from b2box.settings.declared import default_of

T = TypeVar("T")

# Answers of batch systems (and of the network below them) meaning "not reached, try again".
TRANSIENT_MARKERS = (
    "socket timed out",
    "timed out",
    "timeout",
    "unable to contact",
    "connection refused",
    "connection reset",
    "temporarily unavailable",
    "try again",
    "transport endpoint",
    "zero bytes were transmitted",
    "failed to connect",
    "can't find address",
    "cannot connect",
    "communication error",
    "network is unreachable",
    "no route to host",
    "broken pipe",
    "lsf is down",
    "please wait",
)


def looks_transient(text: str) -> bool:
    """Whether an error message says the batch system was not reached (as opposed to: it refused the request)."""
    lowered = text.lower()
    return any(marker in lowered for marker in TRANSIENT_MARKERS)


class CallFailed(Exception):
    """One call to a batch system failed; ``transient`` says whether another try may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class BatchSystemUnavailable(B2BoxError):
    """A batch system did not answer for longer than the retry limit; the run stops and leaves its jobs alone."""

    def __init__(self, system: str, operation: str, waited: float, last_error: str) -> None:
        self.system = system
        super().__init__(
            f"{system} did not answer for {waited:.0f} s ({operation}: {last_error}). Jobs already submitted are "
            "left as they are; run the same command again when the batch system is back to re-attach to them "
            "(the limit is the batch_retry_limit setting)."
        )


def _declared(name: str) -> Any:
    return field(default_factory=lambda: float(default_of(name)))


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to try again (by default as the settings' defaults say)."""

    limit: float = _declared("batch_retry_limit")  # seconds of failing calls before the run stops
    first_delay: float = 1.0
    max_delay: float = 60.0
    command_timeout: float = _declared("batch_command_timeout")  # seconds one command may take


class BatchCalls:
    """Calls to one batch system under one :class:`RetryPolicy`, retries reported through ``note``."""

    def __init__(
        self,
        system: str,
        policy: RetryPolicy | None = None,
        note: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.system = system
        self.policy = policy or RetryPolicy()
        self.note = note or (lambda text: None)
        self.sleep = sleep
        self.retries = 0  # how many calls were tried again, for the run's statistics

    def call(self, operation: str, function: Callable[[], T]) -> T:
        """``function()``, tried again while it raises a transient :class:`CallFailed`."""
        started = time.monotonic()
        delay = self.policy.first_delay
        attempt = 0
        while True:
            try:
                return function()
            except CallFailed as failure:
                if not failure.transient:
                    raise
                waited = time.monotonic() - started
                if waited + delay > self.policy.limit:
                    raise BatchSystemUnavailable(self.system, operation, waited, str(failure)) from None
                attempt += 1
                self.retries += 1
                self.note(
                    f"b2box: {self.system} {operation} failed ({_first_line(str(failure))}); "
                    f"try {attempt + 1} in {delay:.0f} s"
                )
                self.sleep(delay)
                delay = min(delay * 2, self.policy.max_delay)

    def run(
        self,
        operation: str,
        command: Sequence[str],
        *,
        input_text: str | None = None,
        always_transient: bool = False,
        accept: Callable[[subprocess.CompletedProcess[str]], bool] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with the policy's timeout, retrying passing failures; its completed process.

        A non-zero exit is a failure unless ``accept`` says otherwise; it is transient when
        ``always_transient`` (queries, removals) or when the output says the system was not reached.
        """

        return self.call(
            operation,
            lambda: self.run_once(command, input_text=input_text, always_transient=always_transient, accept=accept),
        )

    def run_once(
        self,
        command: Sequence[str],
        *,
        input_text: str | None = None,
        always_transient: bool = False,
        accept: Callable[[subprocess.CompletedProcess[str]], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """One try of :meth:`run`: raises :class:`CallFailed` (transient or not) instead of retrying."""
        try:
            done = subprocess.run(
                list(command),
                capture_output=True,
                text=True,
                input=input_text,
                timeout=self.policy.command_timeout,
                stdin=None if input_text is not None else subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired:
            raise CallFailed(
                f"{command[0]} did not answer within {self.policy.command_timeout:.0f} s", transient=True
            ) from None
        except OSError as error:
            raise CallFailed(f"{command[0]} cannot run: {error.strerror}", transient=False) from None
        if (accept or _exit_zero)(done):
            return done
        message = (done.stderr.strip() or done.stdout.strip() or "no output")[-2000:]
        raise CallFailed(
            f"{command[0]} exited with {done.returncode}: {message}",
            transient=always_transient or looks_transient(message),
        )


def _exit_zero(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == 0


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else text
