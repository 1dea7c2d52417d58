"""Secrets reach jobs without being written into any file of the run.

A variable whose name looks secret (``API_TOKEN``, ``DB_PASSWORD``, an
``X509_USER_PROXY`` path ...) or is named by the ``secret_env`` setting (names
or patterns such as ``MY_*``), given to jobs through the ``env`` setting, a
``B2BOX_*`` variable or ``set_setting``, never goes into ``job.sh``,
``job.json`` or a submit file: those sit on shared filesystems, are read by
admins and are kept after the run. Instead each job gets a file of its own in
a folder of its own under ``secrets_dir`` (in your home by default, so worker
nodes see it), readable only by you. Without a container, or with Apptainer,
the job's wrapper reads the file before anything else and removes it at once
(Apptainer gets the variables through its ``APPTAINERENV_NAME`` variables).
With Docker the file's folder is bound into the container and the job reads
and removes the file there, so the values never reach the container's
configuration (``docker inspect``); the wrapper removes the folder when the
container ends. A job that never ran has its file removed by the run when it
is judged or cancelled, also by a later run that re-attached to it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import secrets as random_names
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

SECRET_MARKERS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "PROXY", "CREDENTIAL", "AUTH", "COOKIE")


def looks_secret(name: str, named: Sequence[str] = ()) -> bool:
    """Whether a name suggests its value must never be shown or stored, or is among ``named`` (names or patterns
    of the ``secret_env`` setting)."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS) or any(fnmatch.fnmatchcase(name, p) for p in named)


def holds_secret(name: str, value: Any, named: Sequence[str] = ()) -> bool:
    """A secret-looking name, or a value (a dict, or JSON text of one) with a secret-looking key inside."""
    if looks_secret(name, named):
        return True
    if isinstance(value, str) and value.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, Mapping):
        return any(holds_secret(str(key), item, named) for key, item in value.items())
    return False


def split(variables: Mapping[str, str], named: Sequence[str] = ()) -> tuple[dict[str, str], dict[str, str]]:
    """``(public, secret)`` variables; ``named``: names or patterns that are secret too (``secret_env``)."""
    public = {name: value for name, value in variables.items() if not holds_secret(name, value, named)}
    return public, {name: value for name, value in variables.items() if name not in public}


def split_settings(values: Mapping[str, Any], named: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """``set_setting`` values for ``job.json`` without secrets, and the secrets as ``B2BOX_<KEY>`` variables (so a
    job's settings lookup still finds them). In an ``env`` dict only the secret entries are taken out: the wrapper
    exports them to the job anyway."""
    public: dict[str, Any] = {}
    hidden: dict[str, str] = {}
    for key, value in values.items():
        if key == "env" and isinstance(value, Mapping):
            public[key] = {name: item for name, item in value.items() if not holds_secret(str(name), item, named)}
        elif holds_secret(key, value, named):
            hidden["B2BOX_" + key.upper()] = value if isinstance(value, str) else json.dumps(value)
        else:
            public[key] = value
    return public, hidden


FILE_NAME = "secrets.env"


def write_file(folder: str, variables: Mapping[str, str]) -> str:
    """A new file of ``NAME='value'`` lines in a new folder of its own, both readable only by this user; its path.
    (The folder is what a Docker job binds, so that it sees no other job's secrets.)"""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    own = os.path.join(folder, f"job-{random_names.token_hex(12)}")
    os.mkdir(own, 0o700)
    path = os.path.join(own, FILE_NAME)
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}={shlex.quote(value)}\n" for name, value in sorted(variables.items()))
    return path


def remove_file(path: str) -> None:
    """Remove a job's secrets file and its folder if the job did not (it never ran, or was cancelled)."""
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        if os.path.basename(os.path.dirname(path)).startswith("job-"):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))
