#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurm-wlm + munge), for the SLURM tests and for trying
# `--executor slurm` without a real cluster.  Idempotent: when the node is already up it returns in about a second.
#
#   sudo bash scripts/local-slurm.sh          # root is needed (apt-get, daemons, /etc/slurm)
#   sinfo                                     # shows the node idle
#   sudo bash scripts/local-slurm.sh stop     # cancels its jobs, stops the daemons this script started
#
# The daemons it starts (munged, slurmctld, slurmd) are recorded, by their PID files, in $started; `stop` ends exactly
# those and leaves alone any that were running before the script.  A start that fails stops what it started.
# Environment: LOCAL_SLURM_PARTITION (default "debug"), LOCAL_SLURM_TIMEOUT_S (seconds to wait for the node, 60).
set -euo pipefail

partition="${LOCAL_SLURM_PARTITION:-debug}"
timeout_s="${LOCAL_SLURM_TIMEOUT_S:-60}"
conf=/etc/slurm/slurm.conf
started=/run/ufm-local-slurm.started   # one PID file per line: the daemons this script started
munge_pid=/run/munge/munged.pid
log() { echo "local-slurm: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (it installs packages and starts daemons)"; exit 1
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
# Stop the daemon of a PID file (TERM, then KILL after 10 s); a stale or missing file is nothing to do.
stop_pidfile() {
    running "$1" || return 0
    local pid; pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    log "pid $pid ($1) did not stop on TERM; killing it"
    kill -9 "$pid" 2>/dev/null || true
}
# Stop what this script started, newest first; cancel the jobs of a controller it started before stopping it.
stop_started() {
    [ -f "$started" ] || { log "nothing to stop (no daemon was started by this script)"; return 0; }
    if grep -qx /run/slurmctld.pid "$started" && running /run/slurmctld.pid && command -v scancel >/dev/null; then
        scancel --full --quiet --user=root 2>/dev/null || true
        scancel --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
        for _ in $(seq 100); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    tac "$started" | while read -r pidfile; do
        if running "$pidfile"; then log "stopping $(basename "$pidfile" .pid) (pid $(cat "$pidfile"))"; fi
        stop_pidfile "$pidfile"
    done
    rm -f "$started"
}

if [ "${1:-start}" = stop ]; then
    stop_started
    exit 0
elif [ "${1:-start}" != start ]; then
    log "usage: local-slurm.sh [start|stop]"; exit 2
fi

# Daemons started by this call, stopped again if the start fails.
this_call=()
record() { echo "$1" >> "$started"; this_call+=("$1"); }
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ] && [ "${#this_call[@]}" -gt 0 ]; then
        log "start failed (exit $rc): stopping the daemons it started"
        for ((i=${#this_call[@]}-1; i>=0; i--)); do stop_pidfile "${this_call[$i]}"; sed -i "\|^${this_call[$i]}\$|d" "$started"; done
    fi
}
trap on_exit EXIT

# 1. Packages (only when missing).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
fi

# 2. Munge (authentication): a key, then the daemon as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey -c
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    rm -f /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged --force --pid-file="$munge_pid"
    record "$munge_pid"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || { log "munged does not answer"; exit 1; }
fi

# 3. slurm.conf: this host, its CPUs and memory as slurmd sees them, one default partition, requeue allowed.
host="$(hostname -s)"
node="$(slurmd -C | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=${host}/")"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
new_conf="$(cat <<EOF
# Written by ufm's scripts/local-slurm.sh: a one-node cluster for tests.
ClusterName=ufm-local
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=5
InactiveLimit=0
${node} State=UNKNOWN
PartitionName=${partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)"
restart=0
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$new_conf" ]; then
    log "writing $conf"
    printf '%s\n' "$new_conf" > "$conf"
    restart=1
fi

# 4. The daemons: (re)start them when the config changed or one is not running.  A daemon that was running before
#    and is restarted for a new config is not recorded: `stop` leaves it running, as it was found.
was_running_ctld=0; running /run/slurmctld.pid && was_running_ctld=1
was_running_d=0; running /run/slurmd.pid && was_running_d=1
if [ "$restart" = 1 ]; then
    stop_pidfile /run/slurmd.pid
    stop_pidfile /run/slurmctld.pid
fi
if ! running /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld
    [ "$was_running_ctld" = 1 ] || record /run/slurmctld.pid
fi
if ! running /run/slurmd.pid; then
    log "starting slurmd"
    slurmd
    [ "$was_running_d" = 1 ] || record /run/slurmd.pid
fi

# 5. Wait until the node is idle (resume it if a previous run left it down or drained).
deadline=$((SECONDS + timeout_s))
while :; do
    state="$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -n 1 || true)"
    case "$state" in
        idle|mix|alloc) break ;;
        down*|drain*|drng*|fail*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "node $host is not idle after ${timeout_s} s (state '${state}'); see /var/log/slurm/"; exit 1
    fi
    sleep 0.5
done
log "node $host is $state in partition $partition"
sinfo
