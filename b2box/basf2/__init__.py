"""b2luigi's basf2 tasks (``b2luigi.basf2_helper``) with the same names, settings and outputs.

Under ``b2box run`` a b2luigi script's ``from b2luigi.basf2_helper import Basf2PathTask`` is this package
(:mod:`b2box.b2luigi_names`); ``from b2box.basf2 import Basf2PathTask`` is its own name. basf2 itself is
imported only when such a task runs, in the task's environment (a Belle II image and an ``env_script`` that sets
up the release), never when the workflow is loaded.
"""

from b2box.basf2.release import get_basf2_git_hash
from b2box.basf2.targets import ROOTLocalTarget
from b2box.basf2.tasks import (
    Basf2FileMergeTask,
    Basf2nTupleMergeTask,
    Basf2PathTask,
    Basf2Task,
    HaddTask,
    MergerTask,
    SimplifiedOutputBasf2Task,
)

__all__ = [
    "Basf2FileMergeTask",
    "Basf2PathTask",
    "Basf2Task",
    "Basf2nTupleMergeTask",
    "HaddTask",
    "MergerTask",
    "ROOTLocalTarget",
    "SimplifiedOutputBasf2Task",
    "get_basf2_git_hash",
]
