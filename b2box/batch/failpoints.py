"""Named moments where the fault tests stop a submitter at its worst moment.

With ``_B2BOX_FAILPOINT=<name>`` in its environment, a run that reaches the point of that name writes the file
``_B2BOX_FAILPOINT_MARK`` names and waits there, so that a test can kill, suspend or interrupt it exactly then
(between starting a job and recording it, say). Without the variable, reaching a point costs a dictionary lookup.
"""

from __future__ import annotations

import os
import time

VARIABLE, MARK = "_B2BOX_FAILPOINT", "_B2BOX_FAILPOINT_MARK"
WAIT = 600.0  # seconds a run waits at its failpoint for the test to act


def reached(name: str) -> None:
    """Wait here if this is the failpoint the environment names (see the module docstring)."""
    if os.environ.get(VARIABLE) != name:
        return
    mark = os.environ.get(MARK)
    if mark:
        with open(mark, "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
    time.sleep(WAIT)
