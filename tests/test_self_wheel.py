"""b2box as a wheel for `b2box build-env`, also where it was installed without a source tree (pip install of a
wheel or of a clone since removed): b2box is on no package index, so the image gets the installed files again."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _package_files(target: Path) -> dict[str, bytes]:
    package = target / "b2box"
    return {
        path.relative_to(target).as_posix(): path.read_bytes()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_an_installation_without_source_tree_makes_the_same_wheel_again(tmp_path: Path) -> None:
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "built"), str(REPO))
    (built,) = (tmp_path / "built").glob("b2box-*.whl")
    installed = tmp_path / "installed"
    _pip("install", "--quiet", "--no-deps", "--target", str(installed), str(built))
    made = tmp_path / "made"
    made.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed)}
    code = (
        "import sys; from pathlib import Path; import b2box; from b2box.env.self_wheel import b2box_wheel; "
        "assert b2box.__file__.startswith(sys.argv[2]), b2box.__file__; print(b2box_wheel(Path(sys.argv[1])))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(made), str(installed)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    wheel = Path(done.stdout.strip())
    assert wheel.name == built.name, "named as pip names it: same version, pure Python"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    dist_info = built.name.split("-py3")[0] + ".dist-info"
    assert {
        f"{dist_info}/METADATA",
        f"{dist_info}/WHEEL",
        f"{dist_info}/entry_points.txt",
        f"{dist_info}/RECORD",
    } <= names
    assert not {f"{dist_info}/INSTALLER", f"{dist_info}/direct_url.json"} & names, "nothing of one installation"
    again = tmp_path / "again"
    _pip("install", "--quiet", "--no-deps", "--target", str(again), str(wheel))
    assert _package_files(again) == _package_files(installed), "the image gets exactly the installed package"
    assert "b2box = b2box.cli.app:main" in (again / dist_info / "entry_points.txt").read_text()
