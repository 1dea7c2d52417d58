"""The basf2 tasks of b2luigi's ``basf2_helper``, same names, parameters, settings and outputs.

``Basf2PathTask`` subclasses define ``create_path()``; running the task processes that path (with the
``Progress`` module added, and ``max_event``/``num_processes`` applied) in the task's environment, in a child
process (these are dispatchable tasks, as in b2luigi). The merge tasks run ``hadd``, ``b2file-merge`` or
``analysis-fei-mergefiles`` on the files of one input name. Before anything runs, the release set up
(``$BELLE2_RELEASE``) is checked against the task's release (``gbasf2_release``, else the one it was submitted
from, carried in its ``git_hash`` parameter).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import luigi

from b2box.api.decorators import on_temporary_files
from b2box.api.dispatch import DispatchableTask
from b2box.api.staging import create_output_dirs
from b2box.api.structure import flatten_to_dict_of_lists
from b2box.basf2.release import check_release, get_basf2_git_hash
from b2box.basf2.targets import ROOTLocalTarget
from b2box.settings.general import Basf2
from b2box.settings.layout import get_serialized_parameters
from b2box.settings.resolved import settings_of

_FROM_ENVIRONMENT = "__release_of_this_environment__"


class ReleaseParameter(luigi.Parameter):
    """A parameter whose default is the release of the environment the task is created in, found when first needed
    (b2luigi computes it when the class is defined, which imports basf2 merely to load a workflow)."""

    def _get_value(self, task_name: str, param_name: str) -> Any:
        value = super()._get_value(task_name, param_name)
        return get_basf2_git_hash() if value == _FROM_ENVIRONMENT else value


class Basf2Task(DispatchableTask):
    """A task run with basf2 set up; ROOT outputs are :class:`ROOTLocalTarget`."""

    #: The release the task was created with (not significant: it changes no output path).
    git_hash = ReleaseParameter(default=_FROM_ENVIRONMENT, significant=False)

    def get_output_file_target(self, *args: Any, **kwargs: Any) -> Any:
        """The output's target: a :class:`ROOTLocalTarget` for ``.root`` files."""
        file_name = self.get_output_file_name(*args, **kwargs)
        if os.path.splitext(file_name)[-1] == ".root":
            return ROOTLocalTarget(file_name)
        return self._get_output_target(*args, **kwargs)

    def get_serialized_parameters(self) -> dict[str, str]:
        """The parameters as they appear in output paths."""
        return dict(get_serialized_parameters(self))

    def expected_release(self) -> str:
        """The release this task must run with: ``gbasf2_release``, else the one it was submitted from."""
        return str(settings_of(self).group(Basf2).gbasf2_release or self.git_hash)

    def run(self) -> None:
        check_release(self.expected_release(), self.task_id)
        super().run()


class Basf2PathTask(Basf2Task):
    """Processes the basf2 path that ``create_path()`` returns (see the module docstring)."""

    num_processes = luigi.IntParameter(significant=False, default=0)
    max_event = luigi.IntParameter(significant=False, default=0)

    def create_path(self) -> Any:
        """The basf2 path to process; subclasses define it (the path must be created here, not outside)."""
        raise NotImplementedError(f"{type(self).__name__} must define create_path()")

    @on_temporary_files
    def process(self) -> None:
        try:
            import basf2
        except ImportError:
            raise ImportError(
                f"{self.task_id}: basf2 cannot be imported here. Set the task's env_script (or image) to set up a "
                "basf2 release."
            ) from None
        if self.num_processes:
            basf2.set_nprocesses(self.num_processes)
        path = self.create_path()
        path.add_module("Progress")
        basf2.print_path(path)
        with _scratch_folder() as scratch:
            basf2.process(path=path, max_event=self.max_event or 0)
            self._collect_outputs(scratch)
        print(basf2.statistics)

    def _collect_outputs(self, scratch: str) -> None:
        """Outputs the path names by their plain file names (as grid paths must) are written in the scratch folder
        it runs in; each is moved to its output path, so one ``create_path()`` serves the grid and local runs."""
        for key in flatten_to_dict_of_lists(self.output()):
            written = os.path.join(scratch, str(key))
            if os.path.isfile(written):
                shutil.move(written, self.get_output_file_name(str(key)))  # the scratch may be another disk


class SimplifiedOutputBasf2Task(Basf2PathTask):
    """A path task whose outputs are the files its ``RootOutput`` modules write."""

    def output(self) -> list[ROOTLocalTarget]:
        outputs = []
        for module in self.create_path().modules():
            if module.type() == "RootOutput":
                for parameter in module.available_params():
                    if parameter.name == "outputFileName":
                        outputs.append(ROOTLocalTarget(parameter.values))
        return outputs


class MergerTask(Basf2Task):
    """Merges the input files of each name (restricted to ``keys`` when set) with ``cmd``."""

    cmd: list[str] = []
    keys: list[str] = []

    @property
    def input_keys(self) -> Iterator[str]:
        for key in flatten_to_dict_of_lists(self.input()):
            if self.keys and key not in self.keys:
                continue
            yield key

    def output(self) -> Iterator[Any]:
        for key in self.input_keys:
            yield self.add_to_output(key)

    @on_temporary_files
    def process(self) -> None:
        create_output_dirs(self)
        if isinstance(self.input(), dict):
            raise ValueError(
                f"{self.task_id}: input is a dict; what a merger task does with a dict input is not defined."
            )
        for key in self.input_keys:
            files = _files_of(self.get_input_file_names(key))  # type: ignore[arg-type]
            subprocess.check_call([*self.cmd, self.get_output_file_name(key), *files])


@contextlib.contextmanager
def _scratch_folder() -> Iterator[str]:
    """Run in a fresh folder (basf2 writes files named without a folder into the current one), then go back."""
    previous = os.getcwd()
    folder = tempfile.mkdtemp(prefix="b2box-basf2-")
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
        shutil.rmtree(folder, ignore_errors=True)


def _files_of(paths: list[str]) -> list[str]:
    """The files to merge: a grid dataset (a folder of downloaded files) stands for the files in it."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(entry.path for entry in os.scandir(path) if entry.is_file())
        else:
            found.append(path)
    return found


class HaddTask(MergerTask):
    """Merges ROOT files with ``hadd -f``."""

    cmd = ["hadd", "-f"]


class Basf2FileMergeTask(MergerTask):
    """Merges basf2 ROOT files with ``b2file-merge -f``."""

    cmd = ["b2file-merge", "-f"]


class Basf2nTupleMergeTask(MergerTask):
    """Merges basf2 ntuple files with ``analysis-fei-mergefiles`` (``fei_merge_files`` in older releases)."""

    @property  # type: ignore[misc]
    def cmd(self) -> list[str]:  # type: ignore[override]
        return ["analysis-fei-mergefiles"] if shutil.which("analysis-fei-mergefiles") else ["fei_merge_files"]
