#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine for the Slurm tests (Debian 12, as root).
#
# Idempotent: when a cluster configured by this script already answers (`sinfo` shows the node
# idle or mixed), it is reused and nothing is installed or restarted. Otherwise the Debian
# packages are installed (apt-get), /etc/slurm/slurm.conf and gres.conf are written and munged,
# slurmctld and slurmd are started directly (no systemd needed). See README.md, "Running on Slurm".
#
# - no accounting database: job records come from squeue (MinJobAge keeps finished jobs listed
#   for 5 minutes) and from the job-completion log /var/log/slurm/jobcomp.log;
# - the node advertises one fake GPU (gres "gpu", no device file), so that jobs asking for
#   --gpus=1 are accepted and scheduled like on a GPU cluster; the job still sees no CUDA device;
# - exit status 0 and the last line "slurm ready" when the cluster accepts jobs; any other
#   exit status comes with a message on stderr saying why (not root, no apt-get, ...).
set -euo pipefail

MARKER="# written by asdflow tests/slurm/start_slurm.sh (v2)"
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm

die() { echo "start_slurm.sh: $*" >&2; exit 2; }

node_ready() {
    command -v sinfo >/dev/null 2>&1 || return 1
    grep -qF "$MARKER" "$CONF" 2>/dev/null || return 1
    local state
    state=$(timeout 10 sinfo -h -o '%T' 2>/dev/null | head -n1) || return 1
    [[ "$state" == idle || "$state" == mixed || "$state" == allocated ]]
}

if node_ready; then
    echo "reusing the running Slurm cluster"
    sinfo
    echo "slurm ready"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root to install and start Slurm (running as $(id -un))"
[[ -r /etc/debian_version ]] || die "not a Debian system (no /etc/debian_version)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "apt-get not found: cannot install slurm packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || die "apt-get install slurmctld slurmd slurm-client munge failed"
fi

HOST=$(hostname -s)
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts
CPUS=$(nproc)
REAL_MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
[[ -n "$REAL_MEM" ]] || die "slurmd -C did not report RealMemory"
MEM=$((REAL_MEM * 9 / 10)) # a bit below the real size, so the node is never drained for it

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
cat >"$CONF" <<CONF
$MARKER
ClusterName=asdflowci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat >/etc/slurm/gres.conf <<GRES
$MARKER
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null Count=1
GRES

# munged refuses to run as root (log dir ownership): run it as the munge user, before slurm.
if ! munge -n >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 1 40); do munge -n >/dev/null 2>&1 && break; sleep 0.25; done
    munge -n >/dev/null 2>&1 || die "munged did not start"
fi

# (Re)start the slurm daemons so that they read the configuration written above.
for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
done
/usr/sbin/slurmctld || die "slurmctld did not start (see $LOGDIR/slurmctld.log)"
/usr/sbin/slurmd || die "slurmd did not start (see $LOGDIR/slurmd.log)"

sleep 1 # the daemons write their pid files after forking
alive() { local pid; pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
for _ in $(seq 1 60); do
    alive /run/slurmctld.pid || die "slurmctld exited: $(tail -n1 "$LOGDIR/slurmctld.log")"
    alive /run/slurmd.pid || die "slurmd exited: $(tail -n1 "$LOGDIR/slurmd.log")"
    state=$(timeout 5 sinfo -h -o '%T' 2>/dev/null | head -n1 || true)
    [[ "$state" == idle ]] && break
    [[ "$state" == inval* ]] && break # configuration rejected by slurmd: no point waiting
    if [[ "$state" == drain* || "$state" == down* ]]; then
        scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    fi
    sleep 1
done
node_ready || die "the node did not become idle (sinfo: $(sinfo -h 2>&1 | head -n3); see $LOGDIR)"
sinfo
echo "slurm ready"
