#!/bin/bash
# b2box job: {{title}}
# Runs in: {{image_label}}
# Written by b2box for this job; change the task's settings, not this file.
set -u

inside() {
    # Runs inside the container (or directly, without one); $1 is the batch job id.
    cd -- {{working_dir}} || { {{say_no_working_dir}}; exit 70; }
    {{load_secrets_inside}}
    {{source_env_script}}
    {{export_env}}
    {{use_job_server}}
    command -v {{python}} >/dev/null 2>&1 || { {{say_no_python}}; exit 72; }
    exec {{python_words}} {{bootstrap}} {{bootstrap_args}} "$1"
}
if [ "${1:-}" = "--inside" ]; then inside "${2:-}"; fi
{{announce_local_job}}

b2box_record() {
    # The job's own record of how it ended, known even when the batch system has forgotten the job.
    local target
    if [ $# -ge 2 ]; then target=$2; else target={{exit_file}}; fi
    printf '{"exit_code": %d, "end_time": "%s", "host": "%s"}\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$(hostname)" > "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target"
}
cd -- {{host_working_dir}} || { {{say_no_working_dir}}; b2box_record 70; exit 70; }
b2box_job_id="${B2BOX_JOB_ID:-${LSB_JOBID:-${SLURM_JOB_ID:-local-$$}}}"
{{load_secrets}}
{{verify_digest}}
{{start}}
b2box_status=$?
{{forget_secrets}}
{{record_unstarted_members}}
b2box_record "$b2box_status"
exit "$b2box_status"
