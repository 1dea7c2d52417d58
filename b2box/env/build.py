"""``b2box build-env``: environment definitions in ``images/`` -> Docker images (and SIFs), and a lock file.

Each ``images/<name>/`` folder holds a Dockerfile and whatever it copies. b2box builds it with the Docker
SDK, then adds a thin layer that installs b2box itself, at the running version, from a local wheelhouse
(no network inside the build), into ``/opt/b2box`` (a virtual environment that sees the image's own
packages) and puts it first on PATH. The result is tagged by content: ``b2box-env/<name>:<hash>``, where the
hash covers every file of the definition and b2box's version, so an unchanged definition is a cache hit.

``b2box.lock`` (beside ``images/``) maps each name to its definition hash, Docker image ID and, with
``--apptainer``, SIF path and sha256 (made in two steps where Docker and Apptainer live on different machines,
see :func:`build_sif`; where no Docker engine is, :mod:`b2box.env.apptainer_build` builds the SIF from the
definition instead). A task naming ``image = "env:<name>"`` runs in the locked image, and
its jobs refuse to start on any other digest. ``--check`` tells whether the lock still matches the
definitions, for CI.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from b2box.env.self_wheel import b2box_wheel
from b2box.errors import B2BoxError

IMAGES_FOLDER = "images"
LOCK_FILE = "b2box.lock"
ENV_PREFIX = "env:"
REPOSITORY = "b2box-env"


Say = Callable[[str], None]  # where the build's progress lines go


@dataclass(frozen=True)
class Definition:
    """One environment: ``images/<name>/`` with its Dockerfile."""

    name: str
    folder: Path

    @property
    def dockerfile(self) -> Path:
        return self.folder / "Dockerfile"


def find_project(start: str | os.PathLike[str]) -> Path:
    """The nearest folder at or above ``start`` that holds ``images/`` (or ``b2box.lock``)."""
    folder = Path(start).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / IMAGES_FOLDER).is_dir() or (candidate / LOCK_FILE).is_file():
            return candidate
    raise B2BoxError(f"no {IMAGES_FOLDER}/ folder found in {folder} or above; create {IMAGES_FOLDER}/<name>/Dockerfile")


def definitions(project: Path, names: list[str] | None = None) -> list[Definition]:
    """The environment definitions to build; a missing one names the folder searched."""
    root = project / IMAGES_FOLDER
    found = (
        {
            d.name: Definition(d.name, d)
            for d in sorted(root.iterdir())
            if (d / "Dockerfile").is_file() or (d / "apptainer.def").is_file()
        }
        if root.is_dir()
        else {}
    )
    if not names:
        if not found:
            raise B2BoxError(f"no environment definitions in {root}: add {root}/<name>/Dockerfile")
        return list(found.values())
    missing = [name for name in names if name not in found]
    if missing:
        raise B2BoxError(
            f"no environment {', '.join(missing)} in {root} (it has: {', '.join(found) or 'none'}); "
            f"add {root}/<name>/Dockerfile"
        )
    return [found[name] for name in names]


def _update_with_folder(digest: Any, folder: Path, pattern: str = "*") -> None:
    for path in sorted(p for p in folder.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")


def definition_hash(definition: Definition) -> str:
    """sha256 over every file of the definition (names and contents), b2box's version and b2box's own code, so an
    image never keeps a b2box other than the one building it (the same wherever that b2box is installed)."""
    from b2box import version

    digest = hashlib.sha256(f"b2box {version.__version__}\n".encode())
    _update_with_folder(digest, definition.folder)
    _update_with_folder(digest, Path(version.__file__).resolve().parent, "*.py")
    return digest.hexdigest()


def read_lock(project: Path) -> dict[str, Any]:
    """The environments locked in ``b2box.lock`` (empty when there is none)."""
    path = project / LOCK_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise B2BoxError(f"{path}: not valid JSON ({exc}); rebuild it with b2box build-env") from None
    return dict(data.get("environments", {}))


def write_lock(project: Path, environments: dict[str, Any]) -> Path:
    """Write ``b2box.lock`` atomically; its path."""
    path = project / LOCK_FILE
    partial = path.with_name(f".{LOCK_FILE}.{os.getpid()}")
    partial.write_text(json.dumps({"environments": dict(sorted(environments.items()))}, indent=2) + "\n")
    partial.replace(path)
    return path


def check(project: Path, names: list[str] | None = None) -> list[str]:
    """Problems of the lock file against the definitions (empty: it matches)."""
    lock = read_lock(project)
    problems = []
    for definition in definitions(project, names):
        entry = lock.get(definition.name)
        if entry is None:
            problems.append(f"{definition.name}: not in {LOCK_FILE}")
        elif entry.get("definition") != definition_hash(definition):
            problems.append(f"{definition.name}: {definition.folder} changed since it was locked")
    return problems


def wheelhouse_for(python_version: str) -> Path:
    """b2box (this installation's version) and its dependencies as wheels for the image's Python."""
    folder = Path(tempfile.mkdtemp(prefix="b2box-wheelhouse-"))
    requirement = str(b2box_wheel(folder))
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--dest",
            str(folder),
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_17_x86_64",
            "--platform",
            "any",
            requirement,
        ],
        capture_output=True,
        text=True,
    )
    if fetched.returncode != 0:
        raise B2BoxError(
            f"could not fetch b2box's dependencies for Python {python_version} (pip download; without a package "
            "index, point PIP_FIND_LINKS at a folder of wheels and set PIP_NO_INDEX=1):\n"
            f"{fetched.stderr.strip()[-2000:]}"
        )
    return folder


LAYER = """FROM {base}
COPY wheelhouse /tmp/b2box-wheelhouse
RUN python3 -m venv --system-site-packages /opt/b2box \\
    && /opt/b2box/bin/pip install --no-cache-dir --no-index --find-links /tmp/b2box-wheelhouse b2box \\
    && rm -rf /tmp/b2box-wheelhouse
ENV PATH=/opt/b2box/bin:$PATH
LABEL org.b2box.environment="{name}" org.b2box.definition="{digest}"
"""


def _build(client: Any, context: Path | io.BytesIO, tag: str, what: str, say: Say, custom: bool = False) -> Any:
    """Build with the Docker SDK, saying each step as it starts; a failure shows the failing step's output once.
    The build's intermediate containers are removed whether it succeeds or not (``forcerm``)."""
    options: dict[str, Any] = {"tag": tag, "rm": True, "forcerm": True, "decode": True}
    if custom:
        chunks = client.api.build(fileobj=context, custom_context=True, **options)
    else:
        chunks = client.api.build(path=str(context), **options)
    output: list[str] = []
    built = ""
    for chunk in chunks:
        text = str(chunk.get("stream", ""))
        if text.startswith("Step "):
            output.clear()  # the output shown on failure is the failing step's (said once, below its line)
            say(f"{what}: {text.strip()}")
            continue
        output.append(text)
        if chunk.get("error"):
            raise B2BoxError(
                f"building {what} failed: {str(chunk['error']).strip()}\n{''.join(output).strip()[-3000:]}"
            )
        built = str((chunk.get("aux") or {}).get("ID", built))
    return client.images.get(built or tag)


def _layer_context(base: str, name: str, digest: str, wheelhouse: Path) -> io.BytesIO:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        dockerfile = LAYER.format(base=base, name=name, digest=digest).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(str(wheelhouse), arcname="wheelhouse")
    archive.seek(0)
    return archive


def build(definition: Definition, client: Any, say: Say = lambda _: None) -> dict[str, Any]:
    """The definition's image with b2box on top, built (each step said as it starts) or found in the cache; its
    lock entry."""
    digest = definition_hash(definition)
    if not definition.dockerfile.is_file():
        raise B2BoxError(
            f"{definition.dockerfile} does not exist ({definition.folder} has an apptainer.def only); "
            f"build it with 'b2box build-env --apptainer {definition.name}' where there is no Docker engine"
        )
    tag = f"{REPOSITORY}/{definition.name}:{digest[:12]}"
    try:
        image = client.images.get(tag)
        return {"definition": digest, "docker_image": tag, "docker_id": image.id, "cached": True}
    except Exception:  # not built yet
        pass
    base = _build(client, definition.folder, f"{REPOSITORY}/{definition.name}-base:{digest[:12]}", definition.name, say)
    python_version = _python_version(client, base.id, definition)
    wheelhouse = wheelhouse_for(python_version)
    try:
        image = _build(
            client,
            _layer_context(base.id, definition.name, digest, wheelhouse),
            tag,
            f"{definition.name} (b2box layer)",
            say,
            custom=True,
        )
    finally:
        shutil.rmtree(wheelhouse, ignore_errors=True)
    return {"definition": digest, "docker_image": tag, "docker_id": image.id, "cached": False}


PYTHON_VERSION_ARGS = ("-c", "import sys; print('%d.%d' % sys.version_info[:2])")  # python3's, e.g. 3.11


def _python_version(client: Any, image: str, definition: Definition) -> str:
    """The image's Python (``3.11``), from one container that is removed whatever happens."""
    container = client.containers.create(image, list(PYTHON_VERSION_ARGS), entrypoint="python3")
    try:
        container.start()
        container.wait(timeout=300)
        found = container.logs(stdout=True, stderr=False).decode().strip()
    except Exception as error:
        raise B2BoxError(f"{definition.dockerfile} makes an image without python3 ({error}); b2box needs one") from None
    finally:
        container.remove(force=True)
    return found


class SifPending(B2BoxError):
    """The image is built and saved, but the SIF must be made where Apptainer is (exit code 3 of build-env)."""


def _sif_folder(project: Path) -> Path:
    folder = project / IMAGES_FOLDER / ".sif"
    folder.mkdir(exist_ok=True)
    return folder


def saved_archive(project: Path, name: str, entry: dict[str, Any]) -> Path:
    """Where ``docker save`` leaves an image whose SIF is to be built on another machine."""
    return _sif_folder(project) / f"{name}-{entry['definition'][:12]}.docker.tar"


def _save(client: Any, entry: dict[str, Any], archive: Path) -> None:
    partial = archive.with_name(archive.name + ".partial")
    with open(partial, "wb") as handle:
        for chunk in client.images.get(entry["docker_image"]).save(named=True):
            handle.write(chunk)
    partial.replace(archive)


def build_sif(
    project: Path, name: str, entry: dict[str, Any], client: Any | None, apptainer: str = "apptainer"
) -> dict[str, Any]:
    """A SIF of the built image (``docker save`` -> ``apptainer build docker-archive://``), beside the definitions.

    Docker and Apptainer are rarely on the same machine (a laptop or CI runner has Docker, the submit node has
    Apptainer), so this works in two steps when needed: without Apptainer the image is saved as an archive in
    ``images/.sif/`` and :class:`SifPending` says where to finish; without Docker the saved archive is used.
    """
    from b2box.env.apptainer import sha256_of

    sif = _sif_folder(project) / f"{name}-{entry['definition'][:12]}.sif"
    if sif.exists():
        return {"sif": str(sif), "sif_sha256": sha256_of(str(sif)), "sif_from": "docker-archive"}
    archive = saved_archive(project, name, entry)
    if not archive.exists():
        if client is None:
            raise B2BoxError(
                f"{name}: no Docker engine here and no saved image at {archive}; run "
                f"'b2box build-env --apptainer {name}' on a machine with Docker first."
            )
        _save(client, entry, archive)
    if not shutil.which(apptainer):
        raise SifPending(
            f"{name}: Apptainer is not on this machine; the image is saved as {archive}. Finish with "
            f"'b2box build-env --apptainer {name}' where Apptainer is and this folder is visible "
            "(no Docker needed there)."
        )
    partial = sif.with_name(sif.name + ".partial")
    built = subprocess.run(
        [apptainer, "build", "--force", str(partial), f"docker-archive://{archive}"], capture_output=True, text=True
    )
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        raise B2BoxError(f"apptainer build of {name} from {archive} failed:\n{built.stderr.strip()[-3000:]}")
    partial.replace(sif)
    archive.unlink(missing_ok=True)
    return {"sif": str(sif), "sif_sha256": sha256_of(str(sif)), "sif_from": "docker-archive"}


def locked_entry(project: Path, definition: Definition, lock: dict[str, Any]) -> dict[str, Any]:
    """Without a Docker engine: the lock entry of an unchanged definition (to finish its SIF)."""
    entry = lock.get(definition.name)
    if entry is None or entry.get("definition") != definition_hash(definition):
        state = "is not in" if entry is None else "changed since it was locked in"
        raise B2BoxError(
            f"{definition.name}: no Docker engine here, and {definition.folder} {state} "
            f"{project / LOCK_FILE}; run 'b2box build-env {definition.name}' where Docker is, or "
            f"'b2box build-env --apptainer {definition.name}' to build its SIF here with Apptainer."
        )
    return {**entry, "cached": True}


def kept_sif(old: dict[str, Any] | None, entry: dict[str, Any]) -> dict[str, Any]:
    """The SIF of an unchanged definition stays locked when only the Docker image is rebuilt or found."""
    if old and old.get("definition") == entry["definition"] and old.get("sif") and os.path.exists(old["sif"]):
        return {key: value for key, value in old.items() if key.startswith(("sif", "apptainer_definition"))}
    return {}


def _prefer_docker() -> bool:
    return shutil.which("docker") is not None


def resolve_env_image(reference: str, runtime: str, start: str) -> tuple[str, str, str]:
    """``env:<name>`` -> (image, pinned digest, runtime) from the nearest ``b2box.lock``."""
    name = reference[len(ENV_PREFIX) :]
    project = find_project(start)
    locked = read_lock(project)
    entry = locked.get(name)
    if entry is None:
        defined = [path.parent.name for path in (project / IMAGES_FOLDER).glob("*/Dockerfile")]
        close = difflib.get_close_matches(name, [*locked, *defined], n=1) if name not in defined else []
        if close:  # a misspelling, not an environment that was never built
            hint = f"did you mean '{ENV_PREFIX}{close[0]}'?"
            raise B2BoxError(f"image {reference!r}: there is no environment {name} in {project}; {hint}")
        raise B2BoxError(f"image {reference!r}: {name} is not in {project / LOCK_FILE}; run b2box build-env {name}")
    # auto: Docker where its command is (a laptop, CI), the SIF elsewhere (a batch worker node).
    if runtime == "apptainer" or (
        runtime == "auto" and ("docker_id" not in entry or ("sif" in entry and not _prefer_docker()))
    ):
        if "sif" not in entry:
            raise B2BoxError(f"image {reference!r}: no SIF locked for {name}; run b2box build-env --apptainer {name}")
        return entry["sif"], entry["sif_sha256"], "apptainer"
    if "docker_id" not in entry:
        raise B2BoxError(f"image {reference!r}: no Docker image locked for {name}; run b2box build-env {name}")
    return entry["docker_id"], entry["docker_id"], "docker"
