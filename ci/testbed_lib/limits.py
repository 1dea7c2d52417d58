"""Small limits on the testbed's Slurm cluster and HTCondor pool, for the tests of how b2box respects them.

The rest of the suite runs with the defaults: a test sets the limits it needs with :func:`slurm_limits` or
:func:`htcondor_limits` (context managers) and they are taken back when it ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator, Mapping

from .common import TestbedError
from .worker import Worker

SLURM_CONF = "/etc/slurm/slurm.conf"
SLURM_PRISTINE = "/etc/slurm/slurm.conf.testbed"
HTCONDOR_LIMITS = "/etc/condor/config.d/70-b2box-test-limits.conf"


@contextlib.contextmanager
def slurm_limits(worker: Worker, values: Mapping[str, str]) -> Iterator[None]:
    """Slurm with ``values`` in slurm.conf (``{"MaxArraySize": "11"}``); its daemons restart twice."""
    lines = "\n".join(f"{key}={value}" for key, value in values.items())
    keys = "|".join(values)
    worker.run(
        f"test -e {SLURM_PRISTINE} || cp {SLURM_CONF} {SLURM_PRISTINE}; "
        f"grep -Ev '^({keys})=' {SLURM_PRISTINE} > {SLURM_CONF}.new && printf '%s\\n' {shlex.quote(lines)} "
        f">> {SLURM_CONF}.new && mv {SLURM_CONF}.new {SLURM_CONF}",
        user="root",
    )
    _restart_slurm(worker)
    try:
        yield
    finally:
        worker.run(f"cp {SLURM_PRISTINE} {SLURM_CONF}", user="root")
        _restart_slurm(worker)


def _restart_slurm(worker: Worker, timeout: float = 60) -> None:
    worker.run("scancel --user=$(id -un 1000) 2>/dev/null; scontrol shutdown; sleep 1", user="root", check=False)
    worker.run("pkill -x slurmctld; pkill -x slurmd; sleep 0.5; slurmctld && slurmd", user="root")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = worker.run(["sinfo", "--noheader", "--format=%T"], check=False).stdout.strip()
        if state in ("idle", "mixed", "allocated"):
            return
        time.sleep(0.5)
    raise TestbedError("Slurm", f"not ready {timeout:.0f} s after a restart (sinfo: {state!r})")


@contextlib.contextmanager
def htcondor_limits(worker: Worker, values: Mapping[str, str]) -> Iterator[None]:
    """HTCondor with ``values`` in its configuration (``{"MAX_JOBS_PER_SUBMISSION": "10"}``), reconfigured."""
    text = "".join(f"{key} = {value}\n" for key, value in values.items())
    worker.run(f"printf %s {shlex.quote(text)} > {HTCONDOR_LIMITS} && condor_reconfig", user="root")
    time.sleep(2)  # the schedd reads its configuration again
    try:
        yield
    finally:
        worker.run(f"rm -f {HTCONDOR_LIMITS} && condor_reconfig", user="root")
        time.sleep(2)
