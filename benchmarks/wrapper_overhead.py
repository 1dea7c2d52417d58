"""What the job wrapper adds to a bare ``docker run`` / ``apptainer exec`` of the same command.

Prepares one trivial job through b2box, then times, interleaved and repeated,
(a) the wrapper (``bash job.sh``: working folder, container start, env setup,
exit record) and (b) the container runtime started directly with the same
binds on the same Python command. Prints the medians and their difference and
writes them to benchmarks/results/wrapper_overhead_<runtime>.json.

    python benchmarks/wrapper_overhead.py --runtime docker --image python:3.11-slim-bookworm
    python benchmarks/wrapper_overhead.py --runtime apptainer --image /path/analysis.sif   (on the worker node)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_results

WORKFLOW = """
import b2box

class Tiny(b2box.Task):
    def output(self):
        yield self.add_to_output("tiny.txt")

    def run(self):
        with open(self.get_output_file_name("tiny.txt"), "w") as handle:
            handle.write("x")

if __name__ == "__main__":
    b2box.process(Tiny())
"""


def bare_command(wrapper: Path) -> list[str]:
    """The wrapper's own container command, running the job's Python line directly instead of the wrapper."""
    text = wrapper.read_text()
    start_of_exec = text.index("    exec ") + len("    exec ")
    python_line = shlex.split(text[start_of_exec : text.index('"$1"', start_of_exec)])  # up to the job id
    start = next(line for line in text.splitlines() if "--inside" in line and not line.startswith("if"))
    container = shlex.split(start)[:-3]  # drop: wrapper path, --inside, "$b2box_job_id"
    if container[-1] == "/bin/bash":  # apptainer: image, then /bin/bash
        container = container[:-1]
    else:  # docker: --entrypoint /bin/bash ... image
        position = container.index("--entrypoint")
        del container[position : position + 2]
    return [*container, *python_line, "bare-run"]


def timed(command: list[str], cwd: Path, output: Path) -> float:
    if output.exists():
        output.unlink()
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    assert output.exists(), f"{command[0]} did not run the task"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", choices=["docker", "apptainer"], required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--folder", help="where to put the job (must be visible inside the container)")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="b2box-overhead-", dir=options.folder))
    (folder / "tiny.py").write_text(WORKFLOW)
    (folder / "settings.json").write_text(
        json.dumps({"image": options.image, "runtime": options.runtime, "batch_system": "local"})
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("B2BOX_")}
    subprocess.run([sys.executable, "tiny.py", "--batch"], cwd=folder, env=env, check=True)
    wrapper = next(folder.glob("task_files/**/job.sh"))
    output = folder / "tiny.txt"
    bare = bare_command(wrapper)
    wrapped_times, bare_times = [], []
    for _ in range(options.repeat):
        wrapped_times.append(timed(["/bin/bash", str(wrapper)], folder, output))
        bare_times.append(timed(bare, folder, output))
    wrapped, plain = statistics.median(wrapped_times), statistics.median(bare_times)
    print(
        f"{options.runtime}: bare {1000 * plain:.0f} ms, through the wrapper {1000 * wrapped:.0f} ms, "
        f"overhead {1000 * (wrapped - plain):+.0f} ms (medians of {options.repeat})"
    )
    path = write_results(
        f"wrapper_overhead_{options.runtime}",
        {
            "image": options.image,
            "repeat": options.repeat,
            "bare_ms": 1000 * plain,
            "wrapper_ms": 1000 * wrapped,
            "overhead_ms": 1000 * (wrapped - plain),
            "bare_command": bare,
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
