"""Where settings come from: ``settings.json`` files and ``B2BOX_*`` variables, read as plain JSON.

Only the standard library is used here, so a job process (which may run with
an image's Python that cannot load pydantic) reads the same sources as the
submitting process. Checking them against the typed model is
:mod:`b2box.settings.model`'s job, done once on the submitting side.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from b2box.errors import SettingsError
from b2box.settings.paths import script_dir

SETTINGS_FILE_NAME = "settings.json"
SETTINGS_FILE_ENV_VARS = ("B2BOX_SETTINGS", "B2LUIGI_SETTINGS_JSON")
ENV_PREFIX = "B2BOX_"
CUSTOM_SECTION = "custom"


def read_settings_file(path: str) -> Any:
    """The JSON content of one settings file; errors name the file and what to do."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: settings file not found (named by the environment). Create it or unset the variable."
        ) from None
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). Fix the file."
        ) from None
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}). Save the file as UTF-8 JSON."
        ) from None
    except IsADirectoryError:
        raise SettingsError(
            f"{path}: a folder where b2box reads a settings file. Rename or remove it (settings files are JSON files)."
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file ({exc.strerror}).") from None


def named_settings_file() -> str | None:
    """The file named by ``B2BOX_SETTINGS`` or b2luigi's ``B2LUIGI_SETTINGS_JSON``, if one is."""
    for name in SETTINGS_FILE_ENV_VARS:
        named = os.environ.get(name)
        if named:
            return os.path.abspath(named)
    return None


def _upward(folder: str) -> list[str]:
    """``settings.json`` files in ``folder`` and its parents, nearest first."""
    found = []
    folder = os.path.abspath(folder)
    while True:
        candidate = os.path.join(folder, SETTINGS_FILE_NAME)
        if os.path.lexists(candidate):  # a folder or a broken link of that name is an error, not silently passed by
            found.append(candidate)
        parent = os.path.dirname(folder)
        if parent == folder:
            return found
        folder = parent


def settings_file_paths() -> list[str]:
    """The settings files in lookup order.

    A file named by ``B2BOX_SETTINGS``/``B2LUIGI_SETTINGS_JSON`` replaces the search, as in b2luigi.
    Otherwise: the script's folder and its parents (nearest first), then the working directory and its
    parents (where b2luigi looks) for the files the first search did not find.
    """
    named = named_settings_file()
    if named:
        return [named]
    found = _upward(script_dir())
    found += [path for path in _upward(os.getcwd()) if path not in found]
    return found


def settings_file_candidates() -> list[str]:
    """Every path a settings file is looked for at, whether one is there or not (a file made later changes the
    settings: b2box.engine.kept_graph checks each)."""
    named = named_settings_file()
    if named:
        return [named]
    candidates = []
    for start in (script_dir(), os.getcwd()):
        folder = os.path.abspath(start)
        while True:
            candidates.append(os.path.join(folder, SETTINGS_FILE_NAME))
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return list(dict.fromkeys(candidates))


def raw_environment_values() -> dict[str, Any]:
    """``B2BOX_*`` variables, JSON-decoded where they are JSON (lists, dicts, numbers), else as text."""
    values: dict[str, Any] = {}
    for name, raw in os.environ.items():
        if name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower()
            try:
                values[key] = json.loads(raw)
            except ValueError:
                values[key] = raw
    return values


def setting_file_iterator() -> Iterator[str]:
    """The settings files in lookup order, one by one (b2luigi's ``_setting_file_iterator``)."""
    yield from settings_file_paths()
