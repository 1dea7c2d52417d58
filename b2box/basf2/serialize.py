"""A Basf2PathTask's path as a file for the grid: the path with the aliases, global tags and log level around it.

The grid job (see b2box.batch.backends.gbasf2.projects.steering_file) restores all four; this is b2luigi's
``write_path_and_state_to_file``. It runs on the submitting side, which therefore needs basf2 set up.
"""

from __future__ import annotations

import pickle
from typing import Any


def write_path_and_state(path: Any, file_name: str) -> None:
    """Pickle ``path`` (serialized by basf2) with the variable aliases, global tags and log level now in effect."""
    import basf2
    from basf2.pickle_path import serialize_path

    serialized = serialize_path(path)
    try:
        from variables import variables as manager

        serialized["aliases"] = {str(name): manager.getVariable(str(name)).name for name in manager.getAliasNames()}
    except ImportError:
        serialized["aliases"] = {}
    serialized["globaltags"] = list(basf2.conditions.globaltags)
    serialized["log_level"] = basf2.logging.log_level
    with open(file_name, "wb") as handle:
        pickle.dump(serialized, handle)
