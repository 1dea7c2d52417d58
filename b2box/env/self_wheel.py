"""b2box itself as a wheel, to install into an image at the running version without a package index.

From a source tree (a clone, an editable install) pip builds the wheel. An installation from a wheel or from a
clone that is gone has no source tree, and b2box is on no package index; but b2box is pure Python, so its
installed files and metadata make the same wheel again.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

from b2box.errors import B2BoxError

# dist-info files that describe one installation, not the distribution: a wheel does not carry them
_INSTALLATION_RECORDS = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json"}


def b2box_wheel(folder: Path) -> Path:
    """A wheel of the running b2box in ``folder``."""
    from b2box import version

    source = Path(version.__file__).resolve().parent.parent
    if (source / "pyproject.toml").is_file():
        return _built_from_source(source, folder)
    return _made_from_installation(folder)


def _built_from_source(source: Path, folder: Path) -> Path:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(source)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise B2BoxError(f"could not build the b2box wheel from {source}:\n{built.stderr.strip()}")
    return next(folder.glob("b2box-*.whl"))


def _made_from_installation(folder: Path) -> Path:
    distribution = importlib.metadata.distribution("b2box")
    files = [
        file
        for file in distribution.files or []
        if (file.parts[0] == "b2box" and "__pycache__" not in file.parts)
        or (file.parts[0].endswith(".dist-info") and file.name not in _INSTALLATION_RECORDS)
    ]
    dist_info = next((file.parts[0] for file in files if file.parts[0].endswith(".dist-info")), None)
    if dist_info is None or not any(file.parts[0] == "b2box" for file in files):
        raise B2BoxError(
            f"this b2box installation ({distribution.locate_file('')}) lists no package files, so no wheel can be "
            "made of it for the image: install b2box from a wheel or a clone (pip install /path/to/b2box)"
        )
    wheel = folder / f"b2box-{distribution.version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            data = Path(str(distribution.locate_file(file))).read_bytes()
            archive.writestr(file.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{file.as_posix()},sha256={digest},{len(data)}")
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel
