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

EXIT_SERVER_LOST = 75  # nothing ran: the wrapper may start Python itself
EXIT_SERVER_DIED = 76  # the server died while the task ran (and took the task along): a failed job, not a rerun
ACCEPTED = b"R\n"  # the server's first answer: the task has been started


def main(path: str, job: str, job_id: str) -> int:
    """Ask the server at ``path`` to run ``job``; its exit status."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    request = {"job": job, "job_id": job_id, "cwd": os.getcwd(), "env": dict(os.environ)}
    answer = b""
    try:
        client.connect(path)
        socket.send_fds(client, [b"F"], [0, 1, 2])
        client.sendall(json.dumps(request).encode() + b"\n")
        while answer.count(b"\n") < 2:
            chunk = client.recv(64)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    if not answer.startswith(ACCEPTED):
        return EXIT_SERVER_LOST
    status = answer[len(ACCEPTED) :].strip()
    if status.lstrip(b"-").isdigit():
        return int(status)
    sys.stderr.write("b2box: the local job server stopped while this task ran, and the task with it\n")
    return EXIT_SERVER_DIED


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
