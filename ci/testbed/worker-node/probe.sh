#!/bin/bash
# Report whether each piece of the worker node answers, one line each: "PIECE ok|down DETAIL".
# ci/testbed.py polls this until all pieces are ok, so it must stay quick (well under a second).
USER_NAME=${TESTBED_USER:-b2box}

report() {  # report PIECE STATUS OUTPUT: one line, output flattened and shortened
    local text=${3//$'\n'/ }
    echo "$1 $2 ${text:0:300}"
}

if [ -e /run/testbed-started ]; then report started ok ""; else report started down "entrypoint still running"; fi

if out=$(munge -n 2>&1 | unmunge 2>&1); then report munge ok ""; else report munge down "$out"; fi

out=$(sinfo -h -N -o %T 2>&1)
case "$out" in
    idle*|mixed*|allocated*) report slurm ok "node $out" ;;
    *) report slurm down "node state: $out" ;;
esac

if slots=$(condor_status -af Name 2>&1) && [ -n "$slots" ] \
        && queue=$(runuser -u "$USER_NAME" -- condor_q -totals 2>&1); then
    report htcondor ok "$(echo "$slots" | wc -l) slots"
else
    report htcondor down "${slots:-no slots} ${queue:-}"
fi

if ! out=$(runuser -u "$USER_NAME" -- apptainer --version 2>&1); then
    report apptainer down "$out"
elif ! err=$(runuser -u "$USER_NAME" -- unshare --user true 2>&1); then
    report apptainer down "user namespaces unavailable: $err"
elif ! runuser -u "$USER_NAME" -- test -r /dev/fuse -a -w /dev/fuse; then
    report apptainer down "/dev/fuse missing or not usable by $USER_NAME (SIF images need it)"
else
    report apptainer ok "$out"
fi
