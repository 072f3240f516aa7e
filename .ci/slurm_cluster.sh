#!/usr/bin/env bash
# A throwaway one-node SLURM cluster (with accounting) for hpc_runner's tests.
#
#   .ci/slurm_cluster.sh start|stop|status|restart      (run as root; Debian 12 / slurm 22.05)
#
# Why it looks like this (details: /work/shared/notes/slurm-test-cluster.md):
# * No systemd in CI containers: every daemon is started directly, its PID recorded in $RUN.
# * No cgroups: proctrack/linuxproc + task/none, so it runs in unprivileged containers too.
# * Accounting is required: submitit learns job states only from `sacct`, so slurmdbd runs on a
#   private MariaDB (own datadir, socket, port) that never touches a system database.
# * Loopback only: every daemon binds to 127.0.0.1 (checked after start).
# * `start` is idempotent: when everything is up it only verifies and returns. It (re)writes
#   /etc/slurm/{slurm,gres,slurmdbd}.conf and restarts the daemons if those changed.
# * State, PIDs and logs live in /var/lib/hpc-runner-test-cluster (delete it to start afresh).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH  # daemons live in sbin

CLUSTER=${HPC_TEST_CLUSTER_NAME:-hpctest}
CPUS=${HPC_TEST_CLUSTER_CPUS:-8}       # advertised CPUs (config_overrides lets this exceed the real count)
DB_PORT=${HPC_TEST_CLUSTER_DB_PORT:-16306}
STATE=/var/lib/hpc-runner-test-cluster
RUN=$STATE/run LOG=$STATE/log DB=$STATE/mysql CONF=/etc/slurm
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order; stop goes backwards

say() { echo "slurm_cluster: $*"; }
die() { printf 'slurm_cluster: ERROR: %s\nslurm_cluster: daemon logs are in %s/\n' "$*" "$LOG" >&2; exit 1; }

# ---- process bookkeeping --------------------------------------------------------------------
pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
alive() {   # recorded PID exists, is that daemon, and is not a zombie (PID 1 here may not reap)
  local pid stat; pid=$(pid_of "$1")
  [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ ${stat##*) } != Z* ]]   # the state letter follows "(comm) "
}
launch() {  # launch NAME CMD...: foreground daemon in its own session, detached from our stdio
  local name=$1; shift
  setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
  echo $! >"$RUN/$name.pid"
  for _ in $(seq 50); do alive "$name" && return 0; sleep 0.05; done   # until exec'ed (comm = name)
}
wait_for() {  # wait_for WHAT SECONDS CMD...: poll CMD every 0.2 s; give up early if daemon WHAT died
  local what=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if [[ -f $RUN/$what.pid ]] && ! alive "$what"; then
      die "$what exited at start; last lines of $LOG/$what.out:
$(tail -n 5 "$LOG/$what.out" 2>/dev/null)"
    fi
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.2
  done
}
munge_ok() { munge -n | unmunge; }
db_ok() { mariadb-admin --no-defaults --socket="$RUN/mysqld.sock" -uroot ping; }
node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null | head -1; }
# plnd: idle but planned by backfill for a pending job (e.g. a --begin job); "-" flags planned too
node_ok() { [[ $(node_state) =~ ^(idle|mix|alloc|comp|plnd)-?$ ]]; }

# ---- install + configuration ----------------------------------------------------------------
install_packages() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  mkdir -p "$LOG"
  { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } >"$LOG/apt.log" 2>&1 \
    || die "package installation failed, see $LOG/apt.log"
}

write_if_changed() {  # write_if_changed FILE MODE < content; sets CHANGED=1 when it differed
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else install -m "$2" "$tmp" "$1"; rm -f "$tmp"; CHANGED=1; fi
}

write_configs() {
  mkdir -p "$CONF" "$RUN" "$LOG" "$STATE/slurmctld" "$STATE/slurmd"
  [[ -s $STATE/db.pass ]] || (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/db.pass")
  local mem
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
  [[ -n $mem ]] || die "'slurmd -C' did not report RealMemory"
  write_if_changed "$CONF/slurm.conf" 644 <<EOF
# Written by .ci/slurm_cluster.sh (hpc_runner test cluster) - edits are overwritten.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# Bind to the address the hostname resolves to (checked to be loopback), not to 0.0.0.0.
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# No cgroups anywhere: works in containers without a writable /sys/fs/cgroup.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Start batch jobs as soon as they are submitted (default: up to 3 s later).
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# A node that went DOWN (e.g. slurmd restarted) comes back by itself.
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for 5 minutes.
MinJobAge=300
# Grace between SIGTERM and SIGKILL on cancel/timeout (default 30 s). submitit ignores SIGTERM,
# and no job starts on a node while a cancelled job there waits for its SIGKILL: on one node a
# long KillWait stalls the whole cluster after every cancel.
KillWait=3
MailProg=/bin/true
# Trust the node line below instead of the hardware, so 1-CPU test jobs can run $CPUS at a time.
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$((mem * 9 / 10)) Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
EOF
  # One fake GPU: a character device is required; /dev/null gives CUDA_VISIBLE_DEVICES=0.
  write_if_changed "$CONF/gres.conf" 644 <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu File=/dev/null
EOF
  write_if_changed "$CONF/slurmdbd.conf" 600 <<EOF
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=6819
# Bind to the address the hostname resolves to (loopback), not 0.0.0.0.
CommunicationParameters=NoInAddrAny
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$STATE/db.pass")
StorageLoc=slurm_acct_db
EOF
}

# ---- daemons --------------------------------------------------------------------------------
start_munge() {
  mkdir -p /run/munge && chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || setpriv --reuid=munge --regid=munge --init-groups mungekey --create
  alive munged || munge_ok 2>/dev/null || {   # a system munged that already works is fine too
    launch munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground
  }
  wait_for munged 10 munge_ok
}

start_mariadb() {
  if [[ ! -d $DB/mysql ]]; then
    say "initialising private MariaDB in $DB"
    mariadb-install-db --no-defaults --user=root --datadir="$DB" --skip-test-db \
      --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed, see $LOG/mariadb-install.log"
  fi
  alive mariadbd || launch mariadbd mariadbd --no-defaults --user=root --datadir="$DB" \
    --socket="$RUN/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --pid-file="$RUN/mariadbd.own.pid" --log-error="$LOG/mariadbd.log" \
    --skip-log-bin --innodb-lock-wait-timeout=900 --innodb-buffer-pool-size=1G  # else slurmdbd warns
  wait_for mariadbd 30 db_ok
  local pw; pw=$(cat "$STATE/db.pass")
  mariadb --no-defaults --socket="$RUN/mysqld.sock" -uroot -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
    ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "could not set up the slurm DB user"
}

start_slurm() {
  alive slurmdbd || launch slurmdbd slurmdbd -D
  wait_for slurmdbd 30 sacctmgr -n list cluster
  # Register the cluster once (idempotent), before slurmctld first talks to slurmdbd.
  sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
  if ! alive slurmctld; then
    # A drain reason survives restarts in the saved node state: forget it (jobs are kept).
    rm -f "$STATE"/slurmctld/node_state*
    launch slurmctld slurmctld -D
  fi
  wait_for slurmctld 30 scontrol ping
  alive slurmd || launch slurmd slurmd -D
  local deadline=$((SECONDS + 30)) st
  until node_ok; do
    alive slurmd || die "slurmd exited; last lines of $LOG/slurmd.out: $(tail -n 5 "$LOG/slurmd.out")"
    st=$(node_state)
    if [[ $st =~ drain|drng|down|inval|fail ]]; then
      scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
    fi
    ((SECONDS < deadline)) || die "node $NODE is not usable (state ${st:-unknown}): $(sinfo -h -R 2>&1)"
    sleep 0.3
  done
  wait_for "sacct" 15 sacct -n -X -S now-1minutes
}

check_loopback() {  # no daemon of ours may listen on anything but loopback
  local bad
  command -v ss >/dev/null || { say "ss (iproute2) missing: loopback check skipped"; return 0; }
  bad=$(ss -Hltnp | grep -E 'slurm|mariadbd|munged' | awk '$4 !~ /^(127\.|\[::1\]|\[::ffff:127\.)/' || true)
  [[ -z $bad ]] || die "a daemon listens outside loopback: $bad"
}

daemons_up() {  # every daemon answers (a system munged counts)
  local d
  munge_ok >/dev/null 2>&1 || return 1
  for d in "${DAEMONS[@]:1}"; do alive "$d" || return 1; done
}
any_alive() { local d; for d in "${DAEMONS[@]}"; do alive "$d" && return 0; done; return 1; }

cmd_start() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  NODE=$(hostname -s)
  local ip; ip=$(getent ahostsv4 "$NODE" | awk 'NR==1{print $1}')
  [[ $ip == 127.* ]] || die "hostname '$NODE' resolves to '${ip:-nothing}', not loopback; the \
daemons would listen there. Add '127.0.0.1 $NODE' to /etc/hosts."
  install_packages
  CHANGED=0
  write_configs
  if ((CHANGED)) && any_alive; then say "configuration changed, restarting"; cmd_stop; fi
  local why=""   # fast path: when everything answers, only verify
  daemons_up || why="not all daemons are running"
  [[ -n $why ]] || node_ok || why="node $NODE is '$(node_state)'"
  [[ -n $why ]] || sacct -n -X -S now-1minutes >/dev/null 2>&1 || why="sacct does not answer"
  [[ -n $why ]] || { say "already running (logs: $LOG/)"; return 0; }
  say "starting: $why"
  local t0=$SECONDS
  start_munge; start_mariadb; start_slurm; check_loopback
  # Smoke job; -I fails fast instead of queueing behind a busy node.
  local out; out=$(timeout 60 srun -I30 -p cpu -n1 -t1 -J smoke hostname 2>&1) \
    || die "smoke job 'srun hostname' failed: $out"
  say "up in $((SECONDS - t0)) s: cluster $CLUSTER, node $NODE, partitions cpu (default) + gpu"
  say "daemon logs: $LOG/  (slurmctld.log slurmd.log slurmdbd.log mariadbd.log)"
}

cmd_stop() {
  local d pid i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    d=${DAEMONS[i]}
    if alive "$d"; then
      pid=$(pid_of "$d"); kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do alive "$d" || break; sleep 0.2; done   # up to 20 s (MariaDB flushes)
      if alive "$d"; then
        say "$d ($pid) ignored SIGTERM, killing"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5
      fi
      say "stopped $d ($pid)"
    fi
    rm -f "$RUN/$d.pid"
  done
}

cmd_status() {
  NODE=$(hostname -s)
  local d
  for d in "${DAEMONS[@]}"; do
    if alive "$d"; then echo "$d: running (pid $(pid_of "$d"))"
    elif [[ $d == munged ]] && munge_ok >/dev/null 2>&1; then echo "munged: running (not started by us)"
    else echo "$d: not running"; fi
  done
  if daemons_up && node_ok; then
    echo "node $NODE: $(node_state); cluster $CLUSTER is UP (logs: $LOG/)"; return 0
  fi
  alive slurmctld && echo "node $NODE: $(node_state)"   # sinfo takes ~9 s without slurmctld
  echo "cluster $CLUSTER is DOWN (logs: $LOG/)"; return 1
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
