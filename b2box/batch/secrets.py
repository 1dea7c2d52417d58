"""Secrets reach jobs without being written into any file of the run.

A variable whose name looks secret (``API_TOKEN``, ``DB_PASSWORD``, an
``X509_USER_PROXY`` path ...), given to jobs through the ``env`` setting, a
``B2BOX_*`` variable or ``set_setting``, never goes into ``job.sh``,
``job.json`` or a submit file: those sit on shared filesystems, are read by
admins and are kept after the run. Instead each job gets a file of its own in
``secrets_dir`` (in your home by default, so worker nodes see it), readable
only by you; the job's wrapper reads it before anything else and removes it
at once, then hands the variables into the container by name
(``docker run --env NAME``, Apptainer's ``APPTAINERENV_NAME``). A job that
never ran has its file removed by the run when it is judged or cancelled.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as random_names
import shlex
from collections.abc import Mapping
from typing import Any

SECRET_MARKERS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "PROXY", "CREDENTIAL", "AUTH", "COOKIE")


def looks_secret(name: str) -> bool:
    """Whether a name suggests its value must never be shown or stored."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def holds_secret(name: str, value: Any) -> bool:
    """A secret-looking name, or a value (a dict, or JSON text of one) with a secret-looking key inside."""
    if looks_secret(name):
        return True
    if isinstance(value, str) and value.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, Mapping):
        return any(holds_secret(str(key), item) for key, item in value.items())
    return False


def split(variables: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``(public, secret)`` variables."""
    public = {name: value for name, value in variables.items() if not holds_secret(name, value)}
    return public, {name: value for name, value in variables.items() if name not in public}


def split_settings(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``set_setting`` values for ``job.json`` without secrets, and the secrets as ``B2BOX_<KEY>`` variables (so a
    job's settings lookup still finds them). In an ``env`` dict only the secret entries are taken out: the wrapper
    exports them to the job anyway."""
    public: dict[str, Any] = {}
    hidden: dict[str, str] = {}
    for key, value in values.items():
        if key == "env" and isinstance(value, Mapping):
            public[key] = {name: item for name, item in value.items() if not holds_secret(str(name), item)}
        elif holds_secret(key, value):
            hidden["B2BOX_" + key.upper()] = value if isinstance(value, str) else json.dumps(value)
        else:
            public[key] = value
    return public, hidden


def write_file(folder: str, variables: Mapping[str, str]) -> str:
    """A new file of ``NAME='value'`` lines, readable only by this user; its path."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, f"job-{random_names.token_hex(12)}.env")
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}={shlex.quote(value)}\n" for name, value in sorted(variables.items()))
    return path


def remove_file(path: str) -> None:
    """Remove a job's secrets file if the job did not (it never ran, or was cancelled)."""
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
