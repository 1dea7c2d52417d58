"""Jobs without a shared filesystem (``transfer_files``): what travels to the worker node and back.

Where worker nodes do not see the submit node's files, HTCondor moves them. b2box packs all that one job needs
into ``b2box-bundle.tar`` in its log folder, each file at its absolute path: the job's own files (job.json, the
wrapper), the workflow script and the settings.json beside it, the env_script, the task's inputs and the
``transfer_files``. On the worker node the launcher below unpacks it under ``$B2BOX_ROOT`` (in the job's scratch
folder) and runs the wrapper, which binds each of those folders from there at its usual path into the
container: the task sees the same paths as anywhere else. Afterwards the launcher packs the task's output and
log folders into ``b2box-out.tar``, which HTCondor brings back beside the logs; b2box unpacks it, only into those
folders and each file under a temporary name first, before judging the job.

The image must be readable on the worker node (on CVMFS, say) and contain b2box (``b2box build-env``): nothing
of the submit node is bound into the container.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import tarfile
from collections.abc import Iterable, Sequence
from typing import Any

import luigi

from b2box.api.staging import PARTIAL_PREFIX
from b2box.errors import TaskDefinitionError
from b2box.settings.resolved import settings_of

BUNDLE = "b2box-bundle.tar"
RETURNED = "b2box-out.tar"
MANIFEST = "b2box-manifest.sh"
LAUNCHER_FILE = "launcher.sh"

LAUNCHER = f"""#!/bin/bash
# b2box launcher of a job without a shared filesystem (b2box.batch.transfer): unpack what the job needs under
# $B2BOX_ROOT, run the job's wrapper, pack the task's outputs and logs for the way back.
set -u
export B2BOX_ROOT="$PWD/b2box-root"
mkdir -p "$B2BOX_ROOT" && tar -xf {BUNDLE} -C "$B2BOX_ROOT" || {{ echo "b2box: cannot unpack {BUNDLE}" >&2; exit 70; }}
source "$B2BOX_ROOT/{MANIFEST}"
bash "$B2BOX_ROOT$b2box_wrapper" "$@"
b2box_status=$?
tar -cf {RETURNED} -C "$B2BOX_ROOT" "${{b2box_returns[@]}}" || b2box_status=70
exit "$b2box_status"
"""


def wanted(task: Any) -> bool:
    """Whether the task's jobs bring their files along (``transfer_files`` is set)."""
    return bool(settings_of(task).batch.transfer_files)


def transferred_paths(task: Any) -> list[str]:
    """The task's ``transfer_files`` and inputs, as absolute paths."""
    listed = list(settings_of(task).batch.transfer_files)
    relative = [path for path in listed if not os.path.isabs(path)]
    if relative:
        raise TaskDefinitionError(f"{task.task_id}: transfer_files must be absolute paths, not {relative}")
    inputs = [target.path for target in luigi.task.flatten(task.input()) if hasattr(target, "path")]
    return [*listed, *(os.path.abspath(path) for path in inputs)]


def returned_folders(task: Any, log_dir: str) -> list[str]:
    """The folders a job brings back: those of the task's outputs, and its log folder."""
    outputs = [target.path for target in luigi.task.flatten(task.output()) if hasattr(target, "path")]
    return sorted({os.path.dirname(os.path.abspath(path)) for path in outputs} | {os.path.abspath(log_dir)})


def write_bundle(path: str, files: Iterable[str], folders: Iterable[str], wrapper: str, returns: Sequence[str]) -> None:
    """The bundle: ``files`` (files or folders, with their contents), empty ``folders``, and the manifest."""
    partial = path + ".partial"
    with tarfile.open(partial, "w") as tar:
        for folder in sorted(set(folders)):
            info = tarfile.TarInfo(folder.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for file in sorted(set(files)):
            if os.path.exists(file):
                tar.add(file, arcname=file.lstrip("/"))
        manifest = (
            f"b2box_wrapper={shlex.quote(wrapper)}\n"
            f"b2box_returns=({' '.join(shlex.quote(folder.lstrip('/')) for folder in returns)})\n"
        ).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    os.replace(partial, path)


def restore(task: Any, log_dir: str) -> None:
    """Unpack what a finished job brought back, if anything, into the task's output and log folders only."""
    archive = os.path.join(log_dir, RETURNED)
    if not os.path.isfile(archive):
        return
    allowed = returned_folders(task, log_dir)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = os.path.normpath("/" + member.name.lstrip("/"))
            inside = any(target == folder or target.startswith(folder.rstrip("/") + "/") for folder in allowed)
            if not inside or os.path.basename(target).startswith(PARTIAL_PREFIX):
                continue
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.isfile():
                source = tar.extractfile(member)
                if source is None:
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                partial = os.path.join(os.path.dirname(target), PARTIAL_PREFIX + os.path.basename(target))
                with source, open(partial, "wb") as handle:
                    shutil.copyfileobj(source, handle)
                os.replace(partial, target)
    os.remove(archive)
