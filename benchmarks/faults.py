"""The fault report: run the fault suites (tests/test_faults.py, tests/test_fault_windows.py) and list each fault
tried and whether b2box survived.

Each test there injects one fault on the real pieces (the local backend and local runs here, HTCondor and Slurm on
the testbed) and checks that no output is lost, no task runs twice, nothing looks complete that is not, no secret
is left in a file, and the exit code is the documented one. This prints a line per fault and writes them to
benchmarks/results/faults.json, like the speed benchmarks.

    python benchmarks/faults.py            # needs the testbed for the HTCondor/Slurm faults (ci/testbed.py up)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from common import HERE, write_results

SUITES = [HERE.parent / "tests" / "test_faults.py", HERE.parent / "tests" / "test_fault_windows.py"]


def main() -> int:
    report = Path(tempfile.mkdtemp(prefix="b2box-faults-")) / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", *map(str, SUITES), f"--junitxml={report}"], cwd=HERE.parent)
    faults = []
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        if case.find("skipped") is not None:
            outcome = "skipped: " + (case.find("skipped").get("message") or "")  # type: ignore[union-attr]
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "NOT survived"
        else:
            outcome = "survived"
        name = case.get("name", "").removeprefix("test_").replace("_", " ")
        faults.append({"fault": name, "outcome": outcome, "seconds": round(float(case.get("time", 0)), 2)})
        print(f"{outcome:<14} {float(case.get('time', 0)):6.1f} s  {name}")
    survived = sum(1 for fault in faults if fault["outcome"] == "survived")
    print(f"{survived} of {len(faults)} faults survived")
    path = write_results("faults", {"tried": len(faults), "survived": survived, "faults": faults})
    print(f"results written to {path}")
    return 0 if survived == len(faults) else 1


if __name__ == "__main__":
    sys.exit(main())
