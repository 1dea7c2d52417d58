"""What the job wrapper adds to a bare ``docker run`` / ``apptainer exec`` of the same command, and what a
long-lived container would save.

Prepares one trivial job through b2box, then times, interleaved and repeated,
(a) the wrapper (``bash job.sh``: working folder, container start, env setup,
exit record), (b) the container runtime started directly with the same
binds on the same Python command, and (c) the same Python command handed to
one long-lived container started once with the same binds (``docker exec``
into a running container, ``apptainer exec instance://``): the saving a
container per worker, instead of one per task, could bring. Prints the
medians and their differences and writes them to
benchmarks/results/wrapper_overhead_<runtime>.json.

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


def long_lived(bare: list[str], name: str) -> tuple[list[str], list[str], list[str]]:
    """Commands to start one long-lived container with ``bare``'s options, to run its Python line in that
    container, and to stop it."""
    image_at = bare.index("python3") - 1
    options, image, python_line = bare[2:image_at], bare[image_at], bare[image_at + 1 :]
    if bare[0] == "docker":
        position = options.index("--name")
        del options[position : position + 2]
        start = ["docker", "run", "--detach", "--name", name, *options, "--entrypoint", "sleep", image, "infinity"]
        return start, ["docker", "exec", name, *python_line], ["docker", "rm", "--force", name]
    position = options.index("--pwd")
    pwd = options[position + 1]
    del options[position : position + 2]
    start = ["apptainer", "instance", "start", *options, image, name]
    run = ["apptainer", "exec", "--cleanenv", "--pwd", pwd, f"instance://{name}", *python_line]
    return start, run, ["apptainer", "instance", "stop", name]


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
    start, in_long_lived, stop = long_lived(bare, f"b2box-bench-{os.getpid()}")
    started = time.perf_counter()
    if subprocess.run(start, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        # an instance gets its own /proc, which a node that is itself a container (the testbed's) may refuse
        start[3:3] = ["--no-mount", "proc"]
        subprocess.run(start, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    start_seconds = time.perf_counter() - started
    wrapped_times, bare_times, reused_times = [], [], []
    try:
        for _ in range(options.repeat):
            wrapped_times.append(timed(["/bin/bash", str(wrapper)], folder, output))
            bare_times.append(timed(bare, folder, output))
            reused_times.append(timed(in_long_lived, folder, output))
    finally:
        subprocess.run(stop, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrapped, plain = statistics.median(wrapped_times), statistics.median(bare_times)
    reused = statistics.median(reused_times)
    print(
        f"{options.runtime}: bare {1000 * plain:.0f} ms, through the wrapper {1000 * wrapped:.0f} ms, "
        f"overhead {1000 * (wrapped - plain):+.0f} ms (medians of {options.repeat})\n"
        f"in one long-lived container {1000 * reused:.0f} ms per task after a start of {1000 * start_seconds:.0f} ms: "
        f"a new container per task costs {plain / reused:.2f}x that"
    )
    path = write_results(
        f"wrapper_overhead_{options.runtime}",
        {
            "image": options.image,
            "repeat": options.repeat,
            "bare_ms": 1000 * plain,
            "wrapper_ms": 1000 * wrapped,
            "overhead_ms": 1000 * (wrapped - plain),
            "long_lived_start_ms": 1000 * start_seconds,
            "long_lived_ms": 1000 * reused,
            "new_container_vs_long_lived": plain / reused,
            "bare_command": bare,
            "long_lived_command": in_long_lived,
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
