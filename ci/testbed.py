#!/usr/bin/env python3
"""The b2box testbed: a real Docker engine, HTCondor pool, Slurm cluster and Apptainer on one machine.

    python3 ci/testbed.py up              # engine, images, worker-node container; waits until every piece answers
    python3 ci/testbed.py status          # what exists and what answers (exit 0 only when all is up)
    python3 ci/testbed.py down [--engine] # remove the worker-node container (images stay); --engine stops our dockerd
    python3 ci/testbed.py install-b2box   # venv in the worker node with the current working tree; prints its python
    python3 ci/testbed.py sif [IMAGE]     # SIF of a Docker image (default: the analysis image), cached; prints its path
    python3 ci/testbed.py shell [--root]  # interactive shell in the worker node

Only the standard library is used: this runs before any virtual environment exists. The pieces:

- a Docker engine: the one that answers, else Debian's docker.io started as a background dockerd (root only);
- base images made from Debian's archive with debootstrap, since no registry may be reachable, and tagged with the
  names Dockerfiles use in FROM (python:3.11-slim-bookworm, also tagged debian:bookworm, and debian:trixie), so the
  same Dockerfiles build here and on machines that pull them;
- Debian's XRootD server on the host, for the remote-target tests (which start it, and a WebDAV server, themselves);
- Debian's Chromium on the host, for the report page's screenshot test (headless);
- the worker-node image b2box-testbed/worker-node:trixie from ci/testbed/worker-node/Dockerfile;
- the container b2box-testbed-pool: an HTCondor personal pool and a one-node Slurm cluster (4 slots each) talking
  over its loopback (it has no other network), Apptainer for the ordinary user b2box (it builds SIFs from definitions
  there: the container runs with systempaths=unconfined), an offline registry on its 127.0.0.1:5000 that
  `Worker.registry_image` fills from the host's images (docker save, skopeo copy), and the shared folder mounted at
  the same path as on the host. It is the submit node too, and has no Docker.

The user b2box has the invoking user's uid, or 1000 when that is root, so files jobs write into the shared folder
belong to whoever runs the tests. State, logs and caches live in /var/tmp/b2box-testbed (TESTBED_STATE_DIR).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# The pieces live in ci/testbed_lib/ (one module per concern); tests load this file and use the names below.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from testbed_lib.common import (
    ANALYSIS_IMAGE,
    CONTAINER,
    DEFAULT_UID,
    POOL_LOG_DIR,
    REPO,
    SHARED_DIR,
    USER,
    WORKER_IMAGE,
    TestbedError,
    TestbedUnavailable,
)
from testbed_lib.limits import htcondor_limits, slurm_limits
from testbed_lib.pool import down, status, up, up_b2luigi, up_browser, up_docker, up_storage
from testbed_lib.worker import (
    Worker,
    copy_package_files,
    ensure_wheelhouse,
    project_requirements,
    source_files,
    worker_wheelhouse,
)

__all__ = [
    "ANALYSIS_IMAGE",
    "DEFAULT_UID",
    "POOL_LOG_DIR",
    "REPO",
    "WORKER_IMAGE",
    "TestbedError",
    "TestbedUnavailable",
    "Worker",
    "copy_package_files",
    "down",
    "ensure_wheelhouse",
    "htcondor_limits",
    "project_requirements",
    "slurm_limits",
    "source_files",
    "status",
    "up",
    "up_b2luigi",
    "up_browser",
    "up_docker",
    "up_storage",
    "worker_wheelhouse",
]

# ----------------------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ci/testbed.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="bring everything up (idempotent)")
    down_parser = commands.add_parser("down", help="remove the worker-node container; images stay")
    down_parser.add_argument("--engine", action="store_true", help="also stop the dockerd that `up` started")
    commands.add_parser("status", help="what exists and what answers")
    install_parser = commands.add_parser("install-b2box", help="venv with the working tree in the worker node")
    install_parser.add_argument("--source", type=Path, default=REPO)
    install_parser.add_argument("--extra", action="append", default=[], help="optional dependency group")
    sif_parser = commands.add_parser("sif", help="SIF file of a Docker image, made in the worker node")
    sif_parser.add_argument("image", nargs="?", default=ANALYSIS_IMAGE)
    shell_parser = commands.add_parser("shell", help="interactive shell in the worker node")
    shell_parser.add_argument("--root", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
            return status()
        if args.command == "down":
            down(engine=args.engine)
        elif args.command == "status":
            return status()
        elif args.command == "install-b2box":
            print(up().install_b2box(args.source.resolve(), args.extra))
        elif args.command == "sif":
            print(up().sif(args.image))
        elif args.command == "shell":
            user = "root" if args.root else USER
            tty = ["--tty"] if sys.stdin.isatty() else []
            return subprocess.call(
                [
                    "docker",
                    "exec",
                    "--interactive",
                    *tty,
                    "--user",
                    user,
                    "--workdir",
                    str(SHARED_DIR),
                    CONTAINER,
                    "bash",
                    "-l",
                ]
            )
    except TestbedUnavailable as error:
        print(f"testbed unavailable here: {error}", file=sys.stderr)
        return 3
    except TestbedError as error:
        print(f"testbed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
