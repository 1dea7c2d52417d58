"""What makes a result: the environment a task runs in, its code, its parameters and its inputs, each a digest.

- **environment**: the image's content digest (Docker image ID, SIF sha256), the ``env_script``'s content, the
  spec's variables (values hashed, never kept in clear) and binds, the Python command; the grid's release.
- **code**: the source of the task's classes as the user wrote them (b2box's and luigi's own classes left out), as
  a syntax tree without docstrings, so reformatting or a comment is not a change.
- **parameters**: the task's id (its family and significant parameters).
- **inputs**: the identities of the tasks it requires, so a remade input changes every result made from it, all the
  way down, as in a Merkle tree.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import luigi.task

from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from b2box.env.spec import EnvSpec

ASPECTS = ("environment", "code", "parameters", "inputs")
_FEW_INPUTS = 64  # inputs kept one by one (to say which one changed) up to this many; beyond, only their digest
_NOT_USER_CODE = ("b2box", "luigi", "builtins", "abc", "typing")


def digest(*parts: str) -> str:
    """A short content digest (64 bits of sha256: enough to tell results apart, small enough to keep many)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class Identity(NamedTuple):
    """What made (or would make) one task's outputs (a named tuple: a run makes one per result)."""

    environment: str
    code: str
    parameters: str
    inputs: str
    environment_label: str = ""  # for people: "docker python:3.11-slim-bookworm (sha256:483f…)"
    input_digests: tuple[tuple[str, str], ...] = ()  # (input task id, its identity) when there are few inputs

    @property
    def aspects(self) -> tuple[str, str, str, str]:
        return (self.environment, self.code, self.parameters, self.inputs)

    @property
    def digest(self) -> str:
        return digest(self.environment, self.code, self.parameters, self.inputs)

    def record(self) -> dict[str, Any]:
        """As kept beside the outputs."""
        data = self._asdict()
        data["input_digests"] = [list(pair) for pair in self.input_digests]
        data["digest"] = self.digest
        return data

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Identity | None:
        try:
            return cls(
                environment=str(data["environment"]),
                code=str(data["code"]),
                parameters=str(data["parameters"]),
                inputs=str(data["inputs"]),
                environment_label=str(data.get("environment_label", "")),
                input_digests=tuple((str(name), str(value)) for name, value in data.get("input_digests", [])),
            )
        except (KeyError, TypeError, ValueError):
            return None


# -- the environment --------------------------------------------------------------------------------------------

_specs: dict[str, EnvSpec] = {}
_environments: dict[str, tuple[str, str]] = {}
_by_settings: dict[int, tuple[object, tuple[str, str]]] = {}  # id of a resolved environment section -> its result
_scripts: dict[tuple[str, int, int], str] = {}


_decider: list[Callable[[Any], tuple[str, str] | None]] = []


def decide_environment_with(decider: Callable[[Any], tuple[str, str] | None]) -> None:
    """Where a task's batch system decides the environment of its results (the grid: the release), ``decider``
    says so; the batch layer sets it (b2box.batch.backends.registry), which this layer does not import."""
    _decider[:] = [decider]


def environment_of(task: Any) -> tuple[str, str]:
    """(digest, label) of the environment ``task`` runs in now; resolving an image raises a
    :class:`~b2box.errors.B2BoxError` naming the task when it cannot be found."""
    decided = _decider[0](task) if _decider else None
    if decided is not None:
        return decided
    stated = settings_of(task).environment
    same = _by_settings.get(id(stated))
    if same is not None and same[0] is stated:  # tasks of one class share their section: one resolution for all
        return same[1]
    key = repr(stated)
    found = _environments.get(key) or _bare_environment(stated)
    if found is None:  # on the submitting side only (jobs run without pydantic, which the spec needs)
        from b2box.env.spec import spec_for_task

        spec = _specs.get(key)
        if spec is None:
            spec = _specs[key] = spec_for_task(task)
        found = _environments[key] = environment_of_spec(task.task_id, spec)
    if len(_by_settings) > 1024:  # sections made per task (a property of the task): no use keeping them all
        _by_settings.clear()
    _by_settings[id(stated)] = (stated, found)
    return found


def _bare_environment(stated: Any) -> tuple[str, str] | None:
    """(digest, label) of the host's environment when the settings state nothing the spec could resolve or reject
    (no image, env_script, variables or binds; plain values): what :func:`environment_of_spec` makes of its spec,
    without making one (the spec's model is pydantic, whose import is a tenth of a small first run)."""
    if stated.states_environment or stated.runtime not in ("auto", "none"):
        return None
    executable = stated.executable or ()
    plain = (stated.gpus, stated.extra_args, stated.working_dir, executable, stated.executable_prefix)
    if tuple(map(type, plain)) != (bool, tuple, str, tuple, tuple):
        return None
    command = [*stated.executable_prefix, *executable]
    if not all(isinstance(word, str) for word in (*stated.extra_args, *command)):
        return None
    return _environment_digest("none", "", "", {}, (), command), _HOST


_HOST = "the host (no container)"


def environment_of_spec(task_id: str, spec: EnvSpec) -> tuple[str, str]:
    """(digest, label) of the environment ``spec`` declares, its image resolved now (errors name ``task_id``)."""
    from b2box.env import images

    image = images.resolve(task_id, spec)
    command = [*spec.executable_prefix, *spec.executable]
    found = _environment_digest(spec.runtime, image.digest or image.reference, spec.env_script, spec.env, spec.binds,
                                command)  # fmt: skip
    label = f"{spec.runtime} {image.reference}" + (f" ({image.digest[:19]}…)" if image.digest else "")
    return found, label if spec.runtime != "none" else _HOST


def _environment_digest(
    runtime: str, image: str, env_script: str, env: Mapping[str, str], binds: Iterable[str], command: list[str]
) -> str:
    """The digest of an environment (its variables' values hashed, never kept in clear): the one place its parts
    are put together, for a spec and for the host's environment without one."""
    variables = sorted((name, digest(value)) for name, value in env.items())
    return digest(
        runtime, image, _content_of(env_script), json.dumps(variables), json.dumps(sorted(binds)), json.dumps(command)
    )


def bare_environments() -> list[list[Any]]:
    """Each environment spec resolved in this process without its variables' values, which may be secrets, and the
    digest of the rest, its image resolved: what a kept graph checks again (b2box.engine.kept_graph; the settings
    and variables the values come from are part of what it checks already)."""
    bare = [spec.model_copy(update={"env": {}}) for key, spec in _specs.items() if key in _environments]
    return [[spec.model_dump(mode="json"), environment_of_spec("(kept graph)", spec)[0]] for spec in bare]


def grid_environment(release: str) -> tuple[str, str]:
    """(digest, label) of a grid job's environment: the site chooses the container, the release is what counts."""
    return digest("grid", release), f"the grid, basf2 {release}"


def _content_of(path: str) -> str:
    """The digest of a file's content ('' for none), cached by size and modification time."""
    if not path:
        return ""
    try:
        status = os.stat(path)
    except OSError:
        return f"missing:{path}"
    key = (path, status.st_size, status.st_mtime_ns)
    if key not in _scripts:
        with open(path, "rb") as handle:
            _scripts[key] = hashlib.sha256(handle.read()).hexdigest()[:16]
    return _scripts[key]


# -- the code -----------------------------------------------------------------------------------------------------

_codes: dict[type, str] = {}


def code_of(cls: type) -> str:
    """The digest of the user's code of a task class (see the module docstring), empty when its source cannot be
    read here (then code is not compared); cached per class."""
    found = _codes.get(cls)
    if found is None:
        parts = [_class_tree(klass) for klass in cls.__mro__ if klass.__module__.split(".")[0] not in _NOT_USER_CODE]
        found = _codes[cls] = digest(*parts) if all(parts) else ""
    return found


def _class_tree(klass: type) -> str:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError, SyntaxError):
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and _docstring(node.body):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def _docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


# -- the whole ----------------------------------------------------------------------------------------------------


def identity_of(task: Any, inputs: Iterable[tuple[str, str]]) -> Identity:
    """The identity ``task`` has when it runs now, given the identity digest of each of its inputs (task id,
    digest)."""
    environment = environment_of(task)
    inputs = sorted(inputs)
    return Identity(
        environment=environment[0],
        code=code_of(type(task)),
        parameters=digest(task.task_id),
        inputs=digest(*(f"{name}={value}" for name, value in inputs)),
        environment_label=environment[1],
        input_digests=tuple(inputs) if len(inputs) <= _FEW_INPUTS else (),
    )


def requirements_of(task: Any) -> Iterable[Any]:
    """The tasks ``task`` requires."""
    return luigi.task.flatten(task.requires())
