#!/usr/bin/env bash
# A real Slurm on this one host, for tests and for trying `sweeper launch --slurm` on a laptop.
#
#   cluster/slurm/dev-cluster.sh start    install Debian's slurm + munge if missing, start munged,
#                                         slurmctld and two slurmd "nodes" (n1, n2), wait until idle
#   cluster/slurm/dev-cluster.sh stop     end only the daemons this script started (by their PID files)
#   cluster/slurm/dev-cluster.sh status   print sinfo; exit 0 when this folder's slurmctld runs
#   cluster/slurm/dev-cluster.sh env      print `export SLURM_CONF=...` for clients (eval it)
#
# Everything (config, key, socket, state, logs, PID files) lives in one private folder:
# $SWEEPER_SLURM_DIR (default /tmp/sweeper-slurm). Needs root (munged runs as user munge, the
# daemons as root); it never touches the system's own munge or Slurm.
#
# Knobs (environment): SWEEPER_SLURM_DIR, SWEEPER_SLURM_PORT (slurmctld port, default 26817; the
# nodes take the next ones: keep them outside 10002-19999, Ray's worker ports),
# SWEEPER_SLURM_NODES (default 2), SWEEPER_SLURM_CPUS (CPUs each node advertises, default 2),
# SWEEPER_SLURM_MEMORY (MiB each node advertises, default 4096).
set -euo pipefail

DIR="${SWEEPER_SLURM_DIR:-/tmp/sweeper-slurm}"
PORT="${SWEEPER_SLURM_PORT:-26817}"
NODES="${SWEEPER_SLURM_NODES:-2}"
CPUS="${SWEEPER_SLURM_CPUS:-2}"
MEMORY="${SWEEPER_SLURM_MEMORY:-4096}"
CONF="$DIR/etc/slurm.conf"
SOCKET="$DIR/munge/munge.socket"
export SLURM_CONF="$CONF"

say() { printf 'dev-cluster: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

node_names() { local i; for ((i = 1; i <= NODES; i++)); do printf 'n%d\n' "$i"; done; }

# The PID a PID file holds, or failure when it is gone. A daemon deletes its own file as it exits, so
# the file can vanish between any check and the read; bash's `$(<file)` on a vanished file ends the whole
# script under `set -e` (even inside `||`), which once failed a CI run whose tests had all passed.
read_pid() {
    local pid
    { read -r pid <"$1" || [[ -n ${pid:-} ]]; } 2>/dev/null || return 1  # a last line may lack its newline
    printf '%s' "$pid"
}

# A PID file names a live process of ours (zombies do not count: exited daemons may linger as Z).
alive() {
    local pidfile=$1 pid state
    pid=$(read_pid "$pidfile") || return 1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/status ]] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

install_if_missing() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$DIR/log/apt.log" 2>&1 || die "apt-get update failed, see $DIR/log/apt.log"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$DIR/log/apt.log" 2>&1 \
        || die "apt-get install failed, see $DIR/log/apt.log"
}

write_config() {
    local host node i
    host=$(hostname -s)
    {
        cat <<EOF
# Written by cluster/slurm/dev-cluster.sh; rewritten at every start.
ClusterName=sweeper-dev
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# Finished jobs stay visible to scontrol/squeue for an hour: states without slurmdbd.
MinJobAge=3600
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
JobRequeue=1
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
EOF
        i=0
        while read -r node; do
            i=$((i + 1))
            printf 'NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%d CPUs=%d Sockets=1 CoresPerSocket=%d ThreadsPerCore=1 RealMemory=%d State=UNKNOWN\n' \
                "$node" "$host" $((PORT + i)) "$CPUS" "$CPUS" "$MEMORY"
        done < <(node_names)
        printf 'PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP\n' \
            "$(node_names | paste -sd, -)"
    } >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

start_munge() {
    alive "$DIR/munge/munged.pid" && return 0
    if [[ ! -s $DIR/munge/munge.key ]]; then
        head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    fi
    chown -R munge:munge "$DIR/munge"
    chmod 0755 "$DIR/munge"
    chmod 0400 "$DIR/munge/munge.key"
    rm -f "$SOCKET" "$SOCKET.lock"
    runuser -u munge -- munged --socket="$SOCKET" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" \
        || die "munged did not start, see $DIR/munge/munged.log"
}

wait_idle() {
    local deadline=$((SECONDS + ${1:-60})) want got
    want=$NODES
    while ((SECONDS < deadline)); do
        got=$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle" || $2 == "mix" || $2 == "alloc" {n++} END {print n + 0}')
        ((got >= want)) && return 0
        sleep 0.2
    done
    sinfo -N 2>&1 | sed 's/^/dev-cluster:   /' >&2 || true
    die "nodes not idle after ${1:-60} s; logs in $DIR/log"
}

start() {
    [[ $(id -u) == 0 ]] || die "needs root (munged runs as user munge, slurmd as root)"
    local t0=$SECONDS node
    mkdir -p "$DIR"/{etc,state,run,log,munge}
    chmod 0755 "$DIR"
    install_if_missing
    id munge >/dev/null 2>&1 || die "user munge is missing; reinstall the munge package"
    while read -r node; do mkdir -p "$DIR/spool/$node"; done < <(node_names)
    if alive "$DIR/run/slurmctld.pid"; then
        say "already running (slurmctld PID $(read_pid "$DIR/run/slurmctld.pid")); \`$0 stop\` first to restart"
    else
        write_config
    fi
    start_munge
    # -c: start clean, without jobs left in the state folder by an earlier run.
    alive "$DIR/run/slurmctld.pid" || slurmctld -c -f "$CONF" \
        || die "slurmctld did not start, see $DIR/log/slurmctld.log"
    while read -r node; do
        alive "$DIR/run/slurmd-$node.pid" || slurmd -N "$node" -f "$CONF" \
            || die "slurmd $node did not start, see $DIR/log/slurmd-$node.log"
    done < <(node_names)
    wait_idle 60
    say "up in $((SECONDS - t0)) s: $NODES nodes, config $CONF"
    printf 'export SLURM_CONF=%q\n' "$CONF"
}

stop_pidfile() {
    local pidfile=$1 pid i
    alive "$pidfile" && pid=$(read_pid "$pidfile") || { rm -f "$pidfile"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pidfile" || { rm -f "$pidfile"; return 0; }
        sleep 0.1
    done
    say "PID $pid ($pidfile) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

stop() {
    local f
    [[ -d $DIR ]] || { say "nothing to stop in $DIR"; return 0; }
    for f in "$DIR"/run/slurmd-*.pid; do [[ -e $f ]] && stop_pidfile "$f"; done
    stop_pidfile "$DIR/run/slurmctld.pid"
    stop_pidfile "$DIR/munge/munged.pid"
    say "stopped (state and logs kept in $DIR)"
}

status() {  # exit 0 when our slurmctld lives (sinfo may still be slow to answer under load)
    alive "$DIR/run/slurmctld.pid" || { say "not running (no live slurmctld in $DIR)"; return 1; }
    sinfo -N || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) status ;;
    env) printf 'export SLURM_CONF=%q\n' "$CONF" ;;
    *) printf 'usage: %s start|stop|restart|status|env\n' "$0" >&2; exit 2 ;;
esac
