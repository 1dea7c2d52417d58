#!/bin/bash
# Start the worker node of the b2box testbed: the ordinary user, munge, Slurm (controller and node) and an
# HTCondor personal pool. Runs under tini as the container's command; ci/testbed.py then polls
# testbed-probe until every piece answers. Logs go to /var/log/testbed, which the host sees.
set -euo pipefail

LOGS=/var/log/testbed
USER_NAME=${TESTBED_USER:-b2box}
USER_UID=${TESTBED_UID:-1000}
USER_GID=${TESTBED_GID:-$USER_UID}

# A new container starts with fresh logs, so a log always belongs to the daemons now running.
mkdir -p "$LOGS"
find "$LOGS" -mindepth 1 -delete
mkdir -p "$LOGS/condor" "$LOGS/slurm" "$LOGS/munge"
exec > >(tee -a "$LOGS/entrypoint.log") 2>&1
echo "$(date -Is) starting worker node (user $USER_NAME, uid $USER_UID, gid $USER_GID)"

# The container's network is internal: a DNS query for any name not in /etc/hosts would wait 20 s for an answer
# that never comes (Slurm's daemons make such queries at start). Asking the loopback fails at once instead.
grep -qw "$(hostname)" /etc/hosts || echo "127.0.0.1 $(hostname)" >> /etc/hosts
echo "nameserver 127.0.0.1" > /etc/resolv.conf

# The ordinary user submits jobs and runs Apptainer (which refuses to run as root in here). Its uid matches
# the host user's, so files it writes into the shared folder belong to that user on the host.
getent group "$USER_GID" >/dev/null || groupadd -g "$USER_GID" "$USER_NAME"
id -u "$USER_NAME" >/dev/null 2>&1 || useradd -m -o -u "$USER_UID" -g "$USER_GID" -s /bin/bash "$USER_NAME"

# SIF images are mounted with squashfuse, which needs /dev/fuse usable by the ordinary user.
if [ -e /dev/fuse ]; then chmod 666 /dev/fuse; fi

# munge authenticates Slurm's messages; a fresh key per container.
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 "$LOGS/munge"
mungekey --create --force --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
runuser -u munge -- munged --log-file="$LOGS/munge/munged.log"

# Memory enforcement for Slurm (see slurm.conf, cgroup.conf): task/cgroup needs the memory and freezer cgroup v1
# hierarchies, which Docker mounts read-only. With CAP_SYS_ADMIN they can be made writable, in this container's mount
# namespace only; Slurm's cgroups then sit below the container's own (on the host: /docker/<id>/slurm_b2box-testbed)
# and go with it. Without them (cgroup v2 hosts) Slurm runs without enforcement and without cgroups at all.
memory_note=/run/testbed-memory-enforcement
if mountpoint -q /sys/fs/cgroup/memory && mountpoint -q /sys/fs/cgroup/freezer \
        && mount -o remount,bind,rw /sys/fs/cgroup/memory && mount -o remount,bind,rw /sys/fs/cgroup/freezer; then
    if [ ! -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ]; then
        # The kernel does not account swap (swapaccount=0): hold jobs to their memory alone.
        sed -i 's/^ConstrainSwapSpace=.*/ConstrainSwapSpace=no/' /etc/slurm/cgroup.conf
    fi
    echo "Slurm task/cgroup (cgroup v1)" > "$memory_note"
else
    sed -i -e 's|^ProctrackType=.*|ProctrackType=proctrack/linuxproc|' -e 's|^TaskPlugin=.*|TaskPlugin=task/none|' \
        /etc/slurm/slurm.conf
    sed -i 's|^CgroupPlugin=.*|CgroupPlugin=disabled|' /etc/slurm/cgroup.conf
    echo "none in Slurm (no writable cgroup v1 memory hierarchy)" > "$memory_note"
fi
echo "$(date -Is) memory enforcement: $(cat "$memory_note"); HTCondor: hold policy"

# Slurm: controller and node daemon, both on 127.0.0.1 (see /etc/slurm/slurm.conf).
install -d -o slurm -g slurm /run/slurm /var/lib/slurm /var/lib/slurm/slurmctld "$LOGS/slurm"
install -d /var/lib/slurm/slurmd
slurmctld
slurmd

# HTCondor starts container-universe jobs with a .sif image only where it advertises HasSIF, which it does when
# its test SIF runs. Debian's package ships the test sandbox but not that SIF: make it (well under a second).
sif_test=/usr/libexec/condor/exit_37.sif
if [ ! -e "$sif_test" ] && [ -d /usr/libexec/condor/singularity_test_sandbox ]; then
    scratch=$(runuser -u "$USER_NAME" -- mktemp -d)
    runuser -u "$USER_NAME" -- cp -r /usr/libexec/condor/singularity_test_sandbox "$scratch/sandbox"
    if runuser -u "$USER_NAME" -- env HOME="/home/$USER_NAME" apptainer build "$scratch/exit_37.sif" \
            "$scratch/sandbox" > "$LOGS/condor/exit_37-build.log" 2>&1; then
        install -m 0755 "$scratch/exit_37.sif" "$sif_test"
    fi
    rm -rf "$scratch"
fi
# The folders a site binds into the containers HTCondor starts (here: those shared with the host).
if [ -n "${TESTBED_BIND_DIRS:-}" ]; then
    echo "SINGULARITY_BIND_EXPR = \"$TESTBED_BIND_DIRS\"" > /etc/condor/config.d/60-testbed-binds.conf
fi

# The offline registry Apptainer builds pull base images from (see /etc/testbed-registry.yml).
install -d /var/lib/testbed-registry
docker-registry serve /etc/testbed-registry.yml > "$LOGS/registry.log" 2>&1 &

# HTCondor personal pool (see /etc/condor/config.d/50-b2box-testbed.conf).
install -d -o condor -g condor "$LOGS/condor"
condor_master

touch /run/testbed-started
echo "$(date -Is) daemons started"
exec sleep infinity
