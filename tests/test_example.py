"""The main example (ci/example.sh, shown on the Tasks page of the docs) runs and reruns only what was deleted."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import REPO, run_b2box

EXAMPLE = REPO / "examples" / "average"


def test_main_example_reruns_only_what_was_deleted(tmp_path: Path) -> None:
    folder = tmp_path / "average"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("results", "logs"))
    script = str(folder / "workflow.py")
    first = run_b2box("run", script, "--workers", "4", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "101 tasks, 0 already complete, 101 to run" in first.stderr
    average = float((folder / "results/count=100/average.txt").read_text())
    numbers = [float(p.read_text()) for p in (folder / "results").glob("index=*/number.txt")]
    assert len(numbers) == 100 and abs(average - sum(numbers) / 100) < 1e-12

    again = run_b2box("run", script, cwd=tmp_path)
    assert again.returncode == 0 and "0 to run" in again.stderr

    (folder / "results/index=7/number.txt").unlink()
    partial = run_b2box("run", script, cwd=tmp_path)
    assert partial.returncode == 0
    assert "101 tasks, 99 already complete, 2 to run" in partial.stderr
    assert float((folder / "results/count=100/average.txt").read_text()) == average
