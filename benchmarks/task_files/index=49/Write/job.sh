#!/bin/bash
# b2box job: Write_49_e6370dd3c9
# Runs in: the host (no container)
# Written by b2box for this job; change the task's settings, not this file.
set -u

inside() {
    # Runs inside the container (or directly, without one); $1 is the batch job id.
    cd -- /work/main/benchmarks || { printf 'b2box: cannot enter the working folder %s\n' /work/main/benchmarks >&2; exit 70; }
    if [ -S "${B2BOX_JOB_SERVER:-}" ]; then
        # A b2box job server on this machine forks the task from a warm process (b2box.batch.jobserver);
        # when it is gone (75), Python is started as usual below.
        /tmp/dev/bin/python -I -S -c 'import json, socket, sys
path, job, job_id = sys.argv[1:4]
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    client.connect(path)
    socket.send_fds(client, [json.dumps({"job": job, "job_id": job_id}).encode()], [0, 1, 2])
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = client.recv(64)
        if not chunk:
            break
        answer += chunk
except OSError:
    sys.exit(75)
sys.exit(int(answer) if answer.strip().lstrip(b"-").isdigit() else 75)
' "$B2BOX_JOB_SERVER" /work/main/benchmarks/task_files/index=49/Write/job.json "$1"
        b2box_client=$?
        [ "$b2box_client" -eq 75 ] || exit "$b2box_client"
    fi
    command -v /tmp/dev/bin/python >/dev/null 2>&1 || { printf 'b2box: image %s has no %s: install Python in it or set the '"'"'executable'"'"' setting\n' 'the host (no container)' /tmp/dev/bin/python >&2; exit 72; }
    exec /tmp/dev/bin/python -c 'import sys
image, host_version, site_dirs = sys.argv[1], sys.argv[2], [d for d in sys.argv[3].split(":") if d]
def fail(message):
    sys.stderr.write("b2box: " + message + "\n")
    sys.exit(72)
try:
    import b2box.job
except ImportError as first:
    here = "%d.%d" % sys.version_info[:2]
    if here != host_version or not site_dirs:
        fail("%s: %s is Python %s without b2box (%s); the host'"'"'s b2box needs Python %s. Fix: run "
             "'"'"'b2box build-env'"'"' to add b2box to the image, or pip install b2box inside it."
             % (image, sys.executable, here, first, host_version))
    import site
    for folder in site_dirs:
        site.addsitedir(folder)
    try:
        import b2box.job
    except ImportError as second:
        fail("%s: the host'"'"'s b2box does not load in this image (%s). Fix: run '"'"'b2box build-env'"'"' to "
             "add b2box to the image, or pip install b2box inside it." % (image, second))
b2box.job.main(sys.argv[4:])
' 'the host (no container)' 3.11 '' /work/main/benchmarks/task_files/index=49/Write/job.json "$1"
}
if [ "${1:-}" = "--inside" ]; then inside "${2:-}"; fi

b2box_record() {
    # The job's own record of how it ended, known even when the batch system has forgotten the job.
    printf '{"exit_code": %d, "end_time": "%s", "host": "%s"}\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$(hostname)" > /tmp/b2box-bench-2da34l3f/logs/index=49/Write/exit.json.tmp.$$ && mv -f /tmp/b2box-bench-2da34l3f/logs/index=49/Write/exit.json.tmp.$$ /tmp/b2box-bench-2da34l3f/logs/index=49/Write/exit.json
}
cd -- /work/main/benchmarks || { printf 'b2box: cannot enter the working folder %s\n' /work/main/benchmarks >&2; b2box_record 70; exit 70; }
b2box_job_id="${B2BOX_JOB_ID:-${LSB_JOBID:-${SLURM_JOB_ID:-local-$$}}}"
(inside "$b2box_job_id")
b2box_status=$?
b2box_record "$b2box_status"
exit "$b2box_status"
