"""The client a local job's wrapper runs to have its task forked from the warm job server (:mod:`b2box.job.server`).

Started as ``python -I -S client.py <socket> <job.json> <job id>``: only the
standard library, nothing imported that is not needed, so it costs ~20 ms.
It hands the server its stdin/stdout/stderr and environment, waits for the
task's exit status and exits with it; when the server cannot be reached it
exits with :data:`EXIT_SERVER_LOST`, and the wrapper starts Python itself.
"""

import json
import os
import socket
import sys

EXIT_SERVER_LOST = 75


def main(path: str, job: str, job_id: str) -> int:
    """Ask the server at ``path`` to run ``job``; its exit status."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    request = {"job": job, "job_id": job_id, "cwd": os.getcwd(), "env": dict(os.environ)}
    try:
        client.connect(path)
        socket.send_fds(client, [b"F"], [0, 1, 2])
        client.sendall(json.dumps(request).encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = client.recv(64)
            if not chunk:
                break
            answer += chunk
    except OSError:
        return EXIT_SERVER_LOST
    return int(answer) if answer.strip().lstrip(b"-").isdigit() else EXIT_SERVER_LOST


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
