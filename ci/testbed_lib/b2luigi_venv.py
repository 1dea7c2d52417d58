"""A venv with b2box and the real b2luigi 1.3 installed together, for the tests of which b2luigi a script gets.

b2luigi 1.3 pins tenacity below 9, which holds luigi at 3.7 (luigi 3.8 needs tenacity 9), so it cannot share the
test venv, whose luigi is the newest: it gets a venv of its own, b2box installed from this clone (editable).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from testbed_lib.common import CACHE_DIR, REPO, TestbedError, log

B2LUIGI = "b2luigi==1.3.0"
VENV = CACHE_DIR / "b2luigi-venv"


def ensure_b2luigi_venv() -> str:
    """The Python of a venv with this clone's b2box and the real b2luigi; made once per pyproject.toml."""
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + B2LUIGI.encode() + str(REPO).encode()).hexdigest()
    python, marker = VENV / "bin" / "python", VENV / ".b2box-stamp"
    if python.exists() and marker.exists() and marker.read_text() == stamp:
        return str(python)
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "-e", str(REPO), B2LUIGI],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.splitlines()[-20:])
            raise TestbedError("b2luigi venv", f"{' '.join(command[:4])} failed:\n{tail}")
    marker.write_text(stamp)
    log(f"  b2luigi venv: {python}")
    return str(python)
