"""``b2box build-env --apptainer`` where there is no Docker engine: the SIF built from a definition by Apptainer.

The definition is ``images/<name>/apptainer.def`` when the user wrote one (built as it is), else the Dockerfile
converted by :mod:`b2box.env.recipe`; the converted one is kept beside the SIF to read or to copy and edit. As on
the Docker path, the build has two steps: the environment's own image, then b2box's layer on top of it (b2box at
the running version from a local wheelhouse made for the image's Python, no network, ``/opt/b2box`` first on
PATH). Both are ``apptainer build`` runs (``--fakeroot`` for an ordinary user, as sites allow), their output said
line by line. Such a SIF is not the bits of a Docker image built from the same Dockerfile (packages move between
builds), so the lock says how it was made (``sif_from``).
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from b2box.env.apptainer import sha256_of
from b2box.env.build import IMAGES_FOLDER, PYTHON_VERSION_ARGS, Definition, Say, definition_hash, wheelhouse_for
from b2box.env.recipe import convert
from b2box.errors import B2BoxError

HAND_WRITTEN = "apptainer.def"
SIF_FOLDER = ".sif"
LOG_TAIL = 40  # lines of Apptainer's output shown when a build fails

LAYER = """Bootstrap: localimage
From: {base}

%files
{wheelhouse} /opt/b2box-wheelhouse

%post
# (not under /tmp: Apptainer binds the host's /tmp there while %post runs)
python3 -m venv --system-site-packages /opt/b2box
/opt/b2box/bin/pip install --no-cache-dir --no-index --find-links /opt/b2box-wheelhouse b2box
rm -rf /opt/b2box-wheelhouse
# after the image's own environment (90-environment.sh), which a new %environment section would replace
echo 'export PATH="/opt/b2box/bin:$PATH"' > /.singularity.d/env/95-b2box.sh

%labels
org.b2box.environment {name}
org.b2box.definition {digest}
"""


def definition_text(definition: Definition, say: Say) -> tuple[str, str]:
    """The Apptainer definition to build and where it comes from (the hand-written file, or the Dockerfile)."""
    written = definition.folder / HAND_WRITTEN
    if written.is_file():
        return written.read_text(), str(written)
    text, warnings = convert(definition.dockerfile)
    for warning in warnings:
        say(f"warning: {warning}")
    header = (
        f"# Made by b2box from {definition.dockerfile} with spython. To change it, copy it to {written}\n"
        f"# (built as it is, in {definition.folder}, where relative %files sources are found).\n"
    )
    return header + text, str(definition.dockerfile)


def build_from_definition(
    project: Path, definition: Definition, say: Say, apptainer: str = "apptainer"
) -> dict[str, Any]:
    """The SIF of the definition with b2box inside, built or found (an unchanged definition is a cache hit); the
    lock entry's SIF part."""
    if not shutil.which(apptainer):
        raise B2BoxError(
            f"{definition.name}: neither a Docker engine nor Apptainer ({apptainer}) is here; "
            "run 'b2box build-env --apptainer NAME' where one of them is"
        )
    text, source = definition_text(definition, say)
    digest = definition_hash(definition)
    key = hashlib.sha256(f"{digest}\n{text}".encode()).hexdigest()[:12]
    folder = project / IMAGES_FOLDER / SIF_FOLDER
    folder.mkdir(exist_ok=True)
    kept = folder / f"{definition.name}-{key}.def"
    sif = folder / f"{definition.name}-{key}.def.sif"
    entry = {
        "sif": str(sif),
        "sif_from": "definition",
        "apptainer_definition": str(kept),
        "apptainer_definition_sha256": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
        "apptainer_definition_source": source,
    }
    if sif.is_file():
        return {**entry, "sif_sha256": sha256_of(str(sif)), "cached": True}
    kept.write_text(text)
    base = folder / f"{definition.name}-{key}.base.sif"
    try:
        _apptainer_build(apptainer, base, kept, definition.folder, definition.name, say)
        python_version = _python_version(apptainer, base, source)
        wheelhouse = wheelhouse_for(python_version)
        try:
            layer = folder / f"{definition.name}-{key}.layer.def"
            layer.write_text(LAYER.format(base=base, wheelhouse=wheelhouse, name=definition.name, digest=digest))
            _apptainer_build(apptainer, sif, layer, folder, f"{definition.name} (b2box layer)", say)
            layer.unlink()
        finally:
            shutil.rmtree(wheelhouse, ignore_errors=True)
    finally:
        base.unlink(missing_ok=True)
    return {**entry, "sif_sha256": sha256_of(str(sif)), "cached": False}


def _apptainer_build(apptainer: str, sif: Path, definition: Path, cwd: Path, what: str, say: Say) -> None:
    """``apptainer build`` (``--fakeroot`` unless root), each line of its output said as it comes; on failure the
    log's tail, once. The SIF appears only when the build succeeded."""
    fakeroot = ["--fakeroot"] if os.geteuid() != 0 else []
    partial = sif.with_name(sif.name + ".partial")
    command = [apptainer, "build", *fakeroot, "--force", str(partial), str(definition)]
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL)
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            if line.startswith(("INFO:", "+ ", "WARNING:")):
                say(f"{what}: {line.rstrip()}")
    if process.returncode != 0:
        partial.unlink(missing_ok=True)
        shown = "\n".join(tail)
        raise B2BoxError(
            f"building {what} from {definition} failed (apptainer build exited with {process.returncode}); "
            f"the end of its output:\n{shown}"
        )
    partial.replace(sif)


def _python_version(apptainer: str, sif: Path, source: str) -> str:
    """The image's Python (``3.11``), asked in the built image: b2box's wheels must fit it."""
    asked = subprocess.run(
        [apptainer, "exec", "--cleanenv", str(sif), "python3", *PYTHON_VERSION_ARGS],
        capture_output=True,
        text=True,
    )
    if asked.returncode != 0:
        raise B2BoxError(f"{source} makes an image without python3 ({asked.stderr.strip()[-300:]}); b2box needs one")
    return asked.stdout.strip()
