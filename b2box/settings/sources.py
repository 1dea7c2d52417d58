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


def _upward(folder: str) -> Iterator[str]:
    """Where ``settings.json`` is looked for in ``folder`` and its parents, nearest first."""
    folder = os.path.abspath(folder)
    while True:
        yield os.path.join(folder, SETTINGS_FILE_NAME)
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def settings_file_candidates() -> list[str]:
    """Every path a settings file is looked for at, in lookup order, whether one is there or not (a file made later
    changes the settings: b2box.engine.kept_graph checks each).

    A file named by ``B2BOX_SETTINGS``/``B2LUIGI_SETTINGS_JSON`` replaces the search, as in b2luigi.
    Otherwise: the script's folder and its parents (nearest first), then the working directory and its
    parents (where b2luigi looks) for the places the first search did not cover.
    """
    named = named_settings_file()
    return [named] if named else _searched()


def settings_file_paths() -> list[str]:
    """The settings files in lookup order (see :func:`settings_file_candidates`): a named file as it is, found ones
    where something of that name is there (a folder or a broken link is an error, not silently passed by)."""
    named = named_settings_file()
    return [named] if named else [path for path in _searched() if os.path.lexists(path)]


def _searched() -> list[str]:
    """The script's folder and its parents (nearest first), then the working directory's not already among them."""
    return list(dict.fromkeys([*_upward(script_dir()), *_upward(os.getcwd())]))


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
