"""Which basf2 release a task runs with: one setting, ``gbasf2_release``, defaulting as in b2luigi.

b2luigi's default is the release of the environment the task is submitted from: ``$BELLE2_RELEASE``, or, for
``head`` or none, ``basf2.version.get_version()``, or ``"not_set"`` without basf2. Locally, on HTCondor, Slurm
and LSF the job checks that it runs with that release; the grid project is submitted with it.
"""

from __future__ import annotations

import os
import warnings


def get_basf2_git_hash() -> str:
    """The basf2 release (or version hash) of this environment, as b2luigi's function of the same name."""
    release = os.environ.get("BELLE2_RELEASE")
    if release in ("head", None):
        try:
            import basf2.version  # only here: loading a workflow never needs basf2

            release = str(basf2.version.get_version())
        except ImportError as error:
            warnings.warn(
                f'No basf2 was found. Setting basf2 git hash to "not_set": \n {error}', ImportWarning, stacklevel=2
            )
            release = "not_set"
    return str(release)


def check_release(expected: str, task_id: str) -> None:
    """Inside a job: the release set up must be the one the task was submitted for (unless none was set)."""
    if not expected or expected == "not_set":
        return
    found = os.environ.get("BELLE2_RELEASE", "")
    if found != expected:
        raise RuntimeError(
            f"{task_id}: this job runs with basf2 release {found or '(none set up)'}, but the task is meant for "
            f"{expected} (setting gbasf2_release, or the release it was submitted from). Make the task's env_script "
            "or image set up that release, or change gbasf2_release."
        )
