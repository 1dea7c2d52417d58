"""Helpers shared by the benchmarks: timing a command, the b2luigi reference environment, results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
B2LUIGI_VENV = HERE / ".venv-b2luigi"
B2LUIGI_REQUIREMENTS = ["b2luigi[gbasf2]==1.3.0", "setuptools<81"]  # the extra: its gbasf2 backend


def b2luigi_python() -> str:
    """A Python with b2luigi 1.3.0, in a virtual environment of its own (made on first use)."""
    python = B2LUIGI_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(B2LUIGI_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *B2LUIGI_REQUIREMENTS], check=True)
    return str(python)


def timed_run(
    python: str, script: Path, env: dict[str, str], args: tuple[str, ...] = (), timeout: float = 3600
) -> float:
    """Seconds of wall time for ``python script args`` in a fresh result folder; fails loudly."""
    results = tempfile.mkdtemp(prefix="b2box-bench-")
    full_env = {**os.environ, **env, "BENCH_RESULTS": results}
    started = time.perf_counter()
    finished = subprocess.run(
        [python, str(script), *args], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=results
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(results, ignore_errors=True)
    if finished.returncode != 0:
        raise RuntimeError(f"{script} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    return elapsed


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Store a benchmark's figures as JSON in benchmarks/results/<name>.json."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        **data,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def measured(command: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one run of ``command``; fails loudly with the end of its stderr."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # reaped here, for its own resource usage
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{errors.read().decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024
