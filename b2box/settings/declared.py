"""Every setting declared once: its name, type, default and documentation, where it is used.

A group of settings is a subclass of :class:`SettingGroup` whose annotated class attributes are the settings: the
annotation is the type, the value the default, the string after it the documentation::

    class LSFSettings(SettingGroup):
        lsf_array_size: PositiveInt = 1000
        \"\"\"Largest LSF job array b2box submits; larger waves are split.\"\"\"

The settings every task has are declared in :mod:`b2box.settings.general`; each batch system declares its own next
to it, in its module under ``b2box/batch/backends/`` (flat names, as b2luigi's settings files have them). A
declaration is plain Python (the annotations stay text until the settings model reads them), so a job, which has no
pydantic, still knows every default; the typed model (:mod:`b2box.settings.model`) is made from all groups. Groups
declared in modules that are imported only when needed are found through loaders (:func:`add_loader`), which the
batch system registry adds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

G = TypeVar("G", bound="SettingGroup")


@dataclass(frozen=True)
class Declared:
    """One setting as declared: its annotation as text, its default and the group that declares it."""

    name: str
    annotation: str
    default: Any
    group: type[SettingGroup]


class SettingGroup:
    """Settings declared together (see the module docstring); an instance holds one task's values of them."""

    declared: ClassVar[dict[str, Declared]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.declared = {}
        for name, annotation in inspect.get_annotations(cls).items():
            text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
            if text.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in cls.__dict__:
                raise TypeError(f"setting {name!r} of {cls.__qualname__} is declared without a default")
            cls.declared[name] = Declared(name=name, annotation=text, default=cls.__dict__[name], group=cls)
        _add_group(cls)

    def __init__(self, **values: Any) -> None:
        """The group's values: those given, the declared defaults for the others."""
        unknown = set(values) - set(self.declared)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(sorted(unknown))}")
        for name, declared in self.declared.items():
            setattr(self, name, values.get(name, declared.default))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.declared)
        return f"{type(self).__name__}({shown})"


_groups: dict[str, type[SettingGroup]] = {}
_by_name: dict[str, Declared] = {}
_by_name_view = MappingProxyType(_by_name)
_loaders: list[Callable[[], Any]] = []
_choices: dict[str, tuple[str, ...]] = {}
_version = 0


def _add_group(group: type[SettingGroup]) -> None:
    key = f"{group.__module__}.{group.__qualname__}"
    replaced = _groups.get(key)
    for name in replaced.declared if replaced else ():  # a module imported again (tests do that)
        _by_name.pop(name, None)
    for name, declared in group.declared.items():
        other = _by_name.get(name)
        if other is not None:
            raise TypeError(f"setting {name!r} is declared by {other.group.__qualname__} and {group.__qualname__}")
        _by_name[name] = declared
    _groups[key] = group
    _changed()


def _changed() -> None:
    global _version
    _version += 1


def version() -> int:
    """A number that changes whenever a group, a loader or a list of choices is added (the model is made anew)."""
    return _version


def add_loader(loader: Callable[[], Any]) -> None:
    """A function that imports modules declaring groups, called before all settings are needed."""
    _loaders.append(loader)
    _changed()


def add_choices(name: str, choices: Iterable[str]) -> None:
    """The values setting ``name`` may take (the batch systems of the registry for ``batch_system``)."""
    _choices[name] = tuple(choices)
    _changed()


def choices(name: str) -> tuple[str, ...] | None:
    """The values setting ``name`` may take, when they are a fixed list made at run time."""
    return _choices.get(name)


def groups() -> list[type[SettingGroup]]:
    """Every group, after running the loaders not run yet."""
    while _loaders:
        _loaders.pop(0)()
    return list(_groups.values())


def all_settings() -> Mapping[str, Declared]:
    """Every declared setting by name (a read-only view)."""
    groups()
    return _by_name_view


def find(name: str) -> Declared | None:
    """The declaration of ``name``, or None for a name nobody declares. Groups already imported are asked first:
    a setting every task has (``result_dir``) is found without importing each batch system's module (a tenth of a
    rerun with nothing to do), and a job never imports one to learn a default."""
    declared = _by_name.get(name)
    if declared is None and _loaders:
        groups()
        declared = _by_name.get(name)
    return declared


def default_of(name: str) -> Any:
    """The declared default of ``name``, or None for a name nobody declares (see :func:`find`)."""
    declared = find(name)
    return None if declared is None else declared.default
