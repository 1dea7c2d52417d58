"""Running the result identity tests' workflow (tests/workflows/identity.py) and reading what each run made."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.conftest import run_b2box

WORKFLOW = Path(__file__).parent / "workflows" / "identity.py"
NAMES = ("Number(0)", "Number(1)", "Number(2)", "Sum")


def setup(folder: Path, settings: dict[str, object] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "identity.py"
    shutil.copy(WORKFLOW, script)
    (folder / "settings.json").write_text(json.dumps({"result_dir": "results", **(settings or {})}))
    return script


def stamps(folder: Path) -> dict[str, str]:
    found = {f"Number({index})": folder / f"results/index={index}/number.json" for index in range(3)}
    found["Sum"] = folder / "results/sum.json"
    return {name: json.loads(path.read_text())["stamp"] for name, path in found.items() if path.exists()}


def made_again(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in after if before.get(name) != after[name]}


Runner = Callable[[Path, Sequence[str], "dict[str, str] | None"], subprocess.CompletedProcess[str]]


def on_this_machine(folder: Path, args: Sequence[str], env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    return run_b2box(*args, cwd=folder, env=env, timeout=300)


def in_worker_node(worker: Any) -> Runner:
    """The b2box command as the testbed's user runs it on the worker node (the submit node of its pool)."""
    python = worker.install_b2box()

    def runner(folder: Path, args: Sequence[str], env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
        return worker.run([python, "-m", "b2box.cli", *args], cwd=folder, env=env, check=False, timeout=600)

    return runner


def b2box(
    folder: Path, *args: str, env: dict[str, str] | None = None, expect: int = 0, runner: Runner = on_this_machine
) -> subprocess.CompletedProcess[str]:
    done = runner(folder, args, env)
    assert done.returncode == expect, done.stdout + done.stderr
    return done


def run(folder: Path, *flags: str, env: dict[str, str] | None = None, runner: Runner = on_this_machine) -> set[str]:
    """Run the workflow; the results it made (again)."""
    before = stamps(folder)
    b2box(folder, "run", "identity.py", *flags, env=env, runner=runner)
    return made_again(before, stamps(folder))


def status(folder: Path, *flags: str, env: dict[str, str] | None = None, runner: Runner = on_this_machine) -> str:
    return b2box(folder, "status", "identity.py", *flags, env=env, runner=runner).stdout


def row(table: str, family: str) -> list[int]:
    """complete, stale, failed, pending, total of a family in `b2box status`."""
    line = next(line for line in table.splitlines() if line.split() and line.split()[0] == family)
    return [int(value) for value in line.split()[1:]]
