"""Commands in the worker node, and b2box (with its wheelhouse and the SIF of an image) installed there."""

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed_lib.common import (
    ANALYSIS_IMAGE,
    CACHE_DIR,
    CONTAINER,
    LABEL,
    LOG_DIR,
    REGISTRY,
    REPO,
    SHARED_DIR,
    USER,
    TestbedError,
    apt_install,
    is_root,
    locked,
    log,
    prepare_host_folders,
    sh,
    step,
)
from testbed_lib.engine import docker, image_id, inspect
from testbed_lib.images import slug

# -------------------------------------------------------------------------------------------------------- the worker


class CommandFailed(subprocess.CalledProcessError):
    """A command in the worker node failed; unlike CalledProcessError its message shows the output."""

    def __str__(self) -> str:
        tail = "\n".join(part.strip()[-3000:] for part in (self.stdout, self.stderr) if part and part.strip())
        return f"{super().__str__()}\n{tail}".rstrip()


@dataclass(frozen=True)
class Worker:
    """The worker-node container, which is also the submit node: run commands there as the user or root."""

    uid: int
    gid: int
    user: str = USER
    container: str = CONTAINER
    shared_dir: Path = SHARED_DIR
    _venvs: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict, compare=False, repr=False)

    def run(
        self,
        cmd: str | Sequence[str],
        user: str = USER,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = 300,
        cwd: str | Path | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (a string goes through bash -c) in the worker node; CommandFailed when check and it fails."""
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else [str(arg) for arg in cmd]
        options = ["--user", user]
        if input is not None:
            options.append("--interactive")
        if cwd is not None:
            options += ["--workdir", str(cwd)]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        result = subprocess.run(
            ["docker", "exec", *options, self.container, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
        return result

    def install_b2box(self, source: Path = REPO, extras: Sequence[str] = ()) -> str:
        """Path of a venv python in the worker node with `source` (the working tree) installed; cached per tree."""
        key = (str(source), tuple(extras))
        if key not in self._venvs or not self._source_current(self._venvs[key], source):
            self._venvs[key] = install_b2box(self, source, extras)
        return self._venvs[key]

    def _source_current(self, python: str, source: Path) -> bool:
        marker = Path(python).parent.parent / ".b2box-source"
        answer = self.run(["cat", str(marker)], check=False)
        return answer.stdout.strip() == source_digest(source)

    def sif(self, image: str = ANALYSIS_IMAGE) -> str:
        """Path (same on host and worker) of a SIF file made from a local Docker image, cached per image id."""
        return build_sif(self, image)

    def registry_image(self, image: str = ANALYSIS_IMAGE) -> str:
        """The reference (``127.0.0.1:5000/NAME:TAG``) of a host image in the worker node's offline registry."""
        return push_to_registry(self, image)


def current_worker() -> Worker:
    """The Worker of the running container (uid and gid from its labels), without bringing anything up."""
    info = inspect("container", CONTAINER)
    if not info:
        raise TestbedError(f"container {CONTAINER}", "missing: run `python3 ci/testbed.py up`")
    labels = info["Config"].get("Labels") or {}
    return Worker(uid=int(labels[f"{LABEL}.uid"]), gid=int(labels[f"{LABEL}.gid"]))


# ---------------------------------------------------------------------------------------- b2box inside the worker node


def project_requirements(source: Path, extras: Sequence[str]) -> list[str]:
    """Dependencies from pyproject.toml (plus extras): what the wheelhouse must hold."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return requirements


def source_digest(source: Path) -> str:
    """Digest of what makes the b2box wheel: the package and the project files."""
    digest = hashlib.sha256()
    for path in sorted(source_files(source)):
        digest.update(f"{path.relative_to(source)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_files(source: Path) -> list[Path]:
    top = [
        p
        for p in source.iterdir()
        if p.is_file()
        and (p.suffix in {".toml", ".cfg", ".in"} or p.name in {"setup.py"} or p.name.startswith(("README", "LICENSE")))
    ]
    package = [
        p for p in (source / "b2box").rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return top + package


def host_pip() -> list[str]:
    """A pip on the host to fill the wheelhouse (the worker node has no network)."""
    for python in dict.fromkeys((sys.executable, "/usr/bin/python3")):
        if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "pip"]
    apt_install(["python3-pip"])
    return ["/usr/bin/python3", "-m", "pip"]


def ensure_wheelhouse(requirements: Sequence[str], python_version: str, machine: str) -> Path:
    """Binary wheels for the worker node's Python, downloaded on the host once per requirement set."""
    key = hashlib.sha256(f"{python_version} {machine} {sorted(requirements)}".encode()).hexdigest()[:16]
    wheelhouse = CACHE_DIR / "wheelhouse" / key
    if (wheelhouse / ".complete").exists():
        return wheelhouse
    partial = wheelhouse.with_name(f"{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in (17, 28, 34)] + [f"manylinux2014_{machine}", "any"]
    cmd = [
        *host_pip(),
        "download",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--abi",
        f"cp{python_version.replace('.', '')}",
        "--abi",
        "abi3",
        "--abi",
        "none",
        *[arg for platform in platforms for arg in ("--platform", platform)],
        "--dest",
        str(partial),
        *requirements,
        "setuptools",
        "wheel",
    ]
    sh(cmd, piece="wheelhouse for the worker node", log_file=LOG_DIR / "wheelhouse.log", timeout=900)
    (partial / ".complete").touch()
    shutil.rmtree(wheelhouse, ignore_errors=True)
    partial.rename(wheelhouse)
    log(f"made wheelhouse {wheelhouse} for Python {python_version}")
    return wheelhouse


def worker_wheelhouse(worker: Worker, requirements: Sequence[str]) -> Path:
    """The wheelhouse for the worker node's Python and machine: what pip there installs from, having no network."""
    python_version, machine = worker.run(
        ["python3", "-c", "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"]
    ).stdout.split()
    return ensure_wheelhouse(requirements, python_version, machine)


def install_b2box(worker: Worker, source: Path = REPO, extras: Sequence[str] = ()) -> str:
    """A venv in the worker node (system site packages, so Debian's htcondor2 stays importable) with the current
    working tree installed. Dependencies come from a host-made wheelhouse once; after a change to the tree only
    b2box is reinstalled (a few seconds)."""
    with locked():
        requirements = project_requirements(source, extras)
        wheelhouse = worker_wheelhouse(worker, requirements)
        venv = f"/home/{worker.user}/venvs/b2box-{wheelhouse.name}"
        pip = [f"{venv}/bin/python", "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
        if worker.run(["test", "-e", f"{venv}/.deps-installed"], check=False).returncode != 0:
            with step(f"venv {venv}"):
                worker.run(["python3", "-m", "venv", "--system-site-packages", "--clear", venv])
                worker.run(
                    [
                        *pip,
                        "install",
                        "--no-index",
                        "--find-links",
                        str(wheelhouse),
                        *requirements,
                        "setuptools",
                        "wheel",
                    ],
                    timeout=600,
                )
                worker.run(["touch", f"{venv}/.deps-installed"])
        digest = source_digest(source)
        marker = f"{venv}/.b2box-source"
        if worker.run(["cat", marker], check=False).stdout.strip() != digest:
            with step(f"install b2box {digest} into {venv}"):
                copy = copy_source(source, digest, worker)
                worker.run(
                    [
                        *pip,
                        "install",
                        "--no-index",
                        "--no-deps",
                        "--no-build-isolation",
                        "--force-reinstall",
                        str(copy),
                    ],
                    timeout=600,
                )
                worker.run(["bash", "-c", f"echo {digest} > {marker}"])
        return f"{venv}/bin/python"


def copy_source(source: Path, digest: str, worker: Worker) -> Path:
    """Copy the tree's package files where the worker user can build from them, leaving the repository untouched."""
    folder = CACHE_DIR / "src"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name != digest:
            shutil.rmtree(old, ignore_errors=True)
    copy = folder / digest
    shutil.rmtree(copy, ignore_errors=True)
    copy_package_files(source, copy, worker)
    return copy


def copy_package_files(source: Path, copy: Path, worker: Worker) -> None:
    """What pip needs to install b2box from ``source`` (see source_files), copied to ``copy``, owned by the worker
    user, so the worker node can build from it."""
    for path in source_files(source):
        target = copy / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    if is_root():
        for path in [copy, *copy.rglob("*")]:
            os.chown(path, worker.uid, worker.gid)


def build_sif(worker: Worker, image: str = ANALYSIS_IMAGE) -> str:
    """docker save the image, then `apptainer build` it as the worker user (as root Apptainer fails in here)."""
    with locked():
        found = image_id(image)
        if not found:
            raise TestbedError(f"image {image}", "missing: cannot make a SIF of it")
        folder = CACHE_DIR / "sif"
        sif = folder / f"{slug(image)}-{found.split(':')[-1][:12]}.sif"
        if sif.exists():
            return str(sif)
        with step(f"SIF of {image}"):
            prepare_host_folders(worker.uid, worker.gid)
            archive = folder / f"{sif.stem}.tar"
            docker("save", image, "--output", str(archive), piece=f"SIF of {image}", timeout=600)
            archive.chmod(0o644)
            partial = f"{sif}.partial"
            try:
                worker.run(["apptainer", "build", "--force", partial, f"docker-archive://{archive}"], timeout=900)
                os.replace(partial, sif)
            finally:
                archive.unlink(missing_ok=True)
        return str(sif)


def push_to_registry(worker: Worker, image: str = ANALYSIS_IMAGE) -> str:
    """Put a host image into the worker node's registry (docker save, cached per image id; skopeo copy in the worker
    node, which has no Docker), unless the registry has that image already; its reference there."""
    with locked():
        found = image_id(image)
        if not found:
            raise TestbedError(f"image {image}", "missing: cannot put it into the registry")
        reference = f"{REGISTRY}/{image}"
        skopeo = ["skopeo", "--insecure-policy"]
        asked = worker.run(
            [*skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"], user="root", check=False
        )
        if asked.returncode == 0 and found.split(":")[-1] in asked.stdout:
            return reference
        with step(f"registry image {reference}"):
            folder = CACHE_DIR / "registry"
            folder.mkdir(parents=True, exist_ok=True)
            archive = folder / f"{slug(image)}-{found.split(':')[-1][:12]}.tar"
            if not archive.exists():
                for old in folder.glob(f"{slug(image)}-*.tar"):
                    old.unlink()
                partial = folder / f"{archive.name}.partial"
                docker("save", image, "--output", str(partial), piece=f"registry image {image}", timeout=600)
                partial.chmod(0o644)
                partial.replace(archive)
            worker.run(
                [
                    *skopeo,
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    f"docker-archive:{archive}",
                    f"docker://{reference}",
                ],
                user="root",
                timeout=600,
            )
        return reference
