"""Talking to gbasf2: its environment, the grid proxy, questions to DIRAC and gbasf2 commands, all under the retry
policy.

Every gbasf2 command runs in the environment captured once from ``gbasf2_setup_path`` (``env -i HOME=...``, as
b2luigi does), with no stdin, a timeout and the run's retry policy; questions to DIRAC go through one helper
(``dirac_query.py``) that knows the BelleDIRAC calls of gbasf2 v5 and is refused on a gbasf2 it does not know. The
proxy is checked before the first submission and at every status query: on a terminal b2box asks for the
certificate password once, in this process, and renews it; without one it stops with the command to run, never
waiting on a hidden prompt.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from b2box.batch.backends.gbasf2.settings import GridSettings
from b2box.batch.retry import BatchCalls, BatchSystemUnavailable, CallFailed
from b2box.errors import B2BoxError

QUERY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dirac_query.py")
SUPPORTED = ("v5", "5.")  # gbasf2 releases whose BelleDIRAC calls this backend knows


class GridProxyExpired(BatchSystemUnavailable):
    """The grid proxy ran out during the run and could not be renewed here."""

    def __init__(self, command: str) -> None:
        B2BoxError.__init__(
            self,
            "the grid proxy expired during the run and cannot be renewed without a terminal. Renew it with "
            f"`{command}`, then run the same command again: the projects go on and the next run re-attaches to them.",
        )
        self.system = "gbasf2"


def capture_environment(setup_path: str, group: str) -> dict[str, str]:
    """The environment gbasf2's setup script makes (sourced in a clean shell, as b2luigi does)."""
    if not os.path.isfile(setup_path):
        raise B2BoxError(
            f"gbasf2_setup_path {setup_path} does not exist: set gbasf2_setup_path to your gbasf2 setup script "
            "(since gbasf2 5.8.2: /cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc)."
        )
    home = os.path.expanduser("~")
    command = f"source {_quote(setup_path)} -g {_quote(group)} > /dev/null 2>&1 < /dev/null; env -0"
    done = subprocess.run(["env", "-i", f"HOME={home}", "bash", "-c", command], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    environment = {}
    for entry in done.stdout.split(b"\0"):
        name, separator, value = entry.decode(errors="replace").partition("=")
        if separator:
            environment[name] = value
    if "PATH" not in environment:
        raise B2BoxError(f"gbasf2_setup_path {setup_path}: sourcing it gave no environment ({done.stderr[-300:]!r})")
    environment.setdefault("HOME", home)
    return environment


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


class GridSession:
    """One run's connection to gbasf2: environments by setup script and group, the user, the gbasf2 version."""

    def __init__(self, calls: BatchCalls) -> None:
        self.retry = calls
        self._environments: dict[tuple[str, str], dict[str, str]] = {}
        self._checked: set[tuple[str, str]] = set()
        self.user = ""
        self.version = ""

    def environment(self, grid: GridSettings) -> dict[str, str]:
        """The gbasf2 environment of ``grid``'s setup, its version and proxy checked on first use."""
        key = (grid.setup_path, grid.proxy_group)
        if key not in self._environments:
            self._environments[key] = capture_environment(grid.setup_path, grid.proxy_group)
        environment = self._environments[key]
        if key not in self._checked:
            self._check_version(environment, grid)
            self.ensure_proxy(environment, grid)
            self._checked.add(key)
        return environment

    def any_environment(self) -> dict[str, str]:
        """An environment captured before (for projects of an earlier run whose task is not known yet)."""
        return next(iter(self._environments.values()))

    def ask(self, environment: Mapping[str, str], *question: str) -> Any:
        """One question to DIRAC through the helper; a failing answer is retried (it is often a passing one)."""

        def once() -> Any:
            done = self.retry.run_once(["python3", QUERY, *question], env=environment, always_transient=True)
            try:
                return json.loads(done.stdout)
            except ValueError as error:
                raise CallFailed(f"gbasf2 query {question[0]} printed no JSON ({error})", transient=True) from None

        return self.retry.call(f"{question[0]} query", once)

    def gb2(self, operation: str, command: Sequence[str], environment: Mapping[str, str], cwd: str | None = None,
            always_transient: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """A gbasf2 command in its environment, under the retry policy."""
        return self.retry.call(
            operation, lambda: self.retry.run_once(command, env=environment, cwd=cwd, always_transient=always_transient)
        )

    def user_option(self) -> list[str]:
        """``--user NAME`` for commands that act on the proxy's user's projects (nothing while unknown)."""
        return ["--user", self.user] if self.user else []

    def _check_version(self, environment: Mapping[str, str], grid: GridSettings) -> None:
        found = self.ask(environment, "version")
        self.version = str(found.get("belledirac", ""))
        if not self.version.startswith(SUPPORTED):
            raise B2BoxError(
                f"gbasf2 {self.version or '(unknown version)'} at {grid.setup_path} is not one this b2box knows how to "
                "talk to (it knows gbasf2 v5). Use a gbasf2 v5 setup (gbasf2_setup_path) or a b2box that supports it."
            )

    def proxy_command(self, grid: GridSettings) -> str:
        """The command that makes a proxy by hand."""
        return (f"source {grid.setup_path} -g {grid.proxy_group} && gb2_proxy_init -g {grid.proxy_group} "
                f"-v {grid.proxy_lifetime}:00")  # fmt: skip

    def ensure_proxy(self, environment: Mapping[str, str], grid: GridSettings, seconds: int | None = None) -> None:
        """A proxy with at least ``gbasf2_min_proxy_lifetime`` hours left, renewed on a terminal, else a clear stop."""
        if seconds is None:
            info = self.ask(environment, "proxy")
            seconds = int(info.get("seconds_left", 0)) if info.get("ok") else 0
            self.user = str(info.get("username") or self.user)
        if seconds > max(60, 3600 * grid.min_proxy_lifetime):
            return
        if not (sys.stdin and sys.stdin.isatty()):
            raise B2BoxError(
                f"no grid proxy with {grid.min_proxy_lifetime} h or more left (it has {seconds} s). Create one and run "
                f"again: {self.proxy_command(grid)}"
            )
        for _ in range(3):
            if self._renew(environment, grid):
                info = self.ask(environment, "proxy")
                self.user = str(info.get("username") or self.user)
                return
        raise B2BoxError(f"no grid proxy: three wrong passwords. Create one with: {self.proxy_command(grid)}")

    def _renew(self, environment: Mapping[str, str], grid: GridSettings) -> bool:
        """One try of ``gb2_proxy_init`` with a password asked here; False for a wrong password."""
        password = getpass.getpass(f"Certificate password for a {grid.proxy_lifetime} h grid proxy: ")
        done = subprocess.run(
            ["gb2_proxy_init", "-g", grid.proxy_group, "-v", f"{grid.proxy_lifetime}:00", "--pwstdin"],
            input=password + "\n", capture_output=True, text=True, env=dict(environment),
            timeout=self.retry.policy.command_timeout,
        )  # fmt: skip
        text = (done.stdout + done.stderr).lower()
        if "bad pass" in text:
            print("b2box: wrong password, try again", file=sys.stderr)
            return False
        if "error" in text or done.returncode != 0:
            raise B2BoxError(f"gb2_proxy_init failed: {(done.stdout + done.stderr).strip()[-500:]}")
        return True
