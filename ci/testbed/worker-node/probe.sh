#!/bin/bash
# Report whether each piece of the worker node answers, one line each: "PIECE ok|down DETAIL".
# ci/testbed.py polls this until all pieces are ok, so it must stay quick (well under a second).
USER_NAME=${TESTBED_USER:-b2box}
T="timeout 5"  # a daemon that hangs must not hang the probe

report() {  # report PIECE STATUS OUTPUT: one line, output flattened and shortened
    local text=${3//$'\n'/ }
    echo "$1 $2 ${text:0:300}"
}

if [ -e /run/testbed-started ]; then
    report started ok ""
else
    # Clients of daemons not yet started wait for them (sinfo: 10 s): ask again later instead.
    report started down "entrypoint still running"
    exit 0
fi

if out=$($T munge -n 2>&1 | $T unmunge 2>&1); then report munge ok ""; else report munge down "$out"; fi

out=$($T sinfo -h -N -o %T 2>&1)
case "$out" in
    idle*|mixed*|allocated*) report slurm ok "node $out, memory enforcement: $(cat /run/testbed-memory-enforcement 2>/dev/null)" ;;
    "") report slurm down "sinfo got no answer from slurmctld within 5 s" ;;
    *) report slurm down "node state: $out" ;;
esac

# The startd advertises one partitionable slot; jobs get dynamic slots cut from its CPUs.
# HasSIF: the starter ran its test SIF, so container-universe jobs with a .sif image can match.
if cpus=$($T condor_status -constraint 'SlotType =!= "Dynamic"' -af TotalSlotCpus 2>&1) && [ -n "$cpus" ] \
        && queue=$($T runuser -u "$USER_NAME" -- condor_q -totals 2>&1); then
    sif=$($T condor_status -constraint 'SlotType =!= "Dynamic"' -af HasSIF 2>&1)
    if [ "$sif" = true ]; then
        report htcondor ok "$cpus CPUs in slots, HasSIF"
    else
        report htcondor down "$cpus CPUs in slots but HasSIF is ${sif:-missing} (see condor/StarterLog.testing)"
    fi
else
    report htcondor down "${cpus:-no slots} ${queue:-}"
fi

if ! out=$($T runuser -u "$USER_NAME" -- apptainer --version 2>&1); then
    report apptainer down "$out"
elif ! err=$(runuser -u "$USER_NAME" -- unshare --user true 2>&1); then
    report apptainer down "user namespaces unavailable: $err"
elif ! runuser -u "$USER_NAME" -- test -r /dev/fuse -a -w /dev/fuse; then
    report apptainer down "/dev/fuse missing or not usable by $USER_NAME (SIF images need it)"
else
    report apptainer ok "$out"
fi

if $T bash -c '</dev/tcp/127.0.0.1/5000' 2>/dev/null; then
    report registry ok "127.0.0.1:5000"
else
    report registry down "nothing listens on 127.0.0.1:5000"
fi
