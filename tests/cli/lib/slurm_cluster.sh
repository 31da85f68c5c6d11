# slurm_cluster.sh — sourced by the Slurm tests: a one-node Slurm cluster on
# this machine (munged, slurmctld, slurmd with their own key, config, state,
# sockets and ports under $T), for slurm.sh and slurm_pipeline.sh.
#
#   T=$(mktemp -d /tmp/tm-x.XXXXXX); chmod 755 "$T"
#   source tests/cli/lib/slurm_cluster.sh
#   slurm_cluster_skip_unless_possible      # exit 77 unless root with the daemons
#   trap slurm_cluster_stop EXIT
#   slurm_cluster_start                     # exit 77 if Slurm cannot start here
# Sets SLURM_CONF (exported), H (the node name) and SLURM_PIDS.
# slurm_cluster_stop cancels the job ids in $SLURM_JOBS (if any), stops the
# daemons and removes $T. slurm_logs_tail prints the daemons' log tails.

PATH="$PATH:/usr/sbin:/sbin"
SLURM_PIDS=()
SLURM_JOBS=${SLURM_JOBS:-}

slurm_cluster_skip_unless_possible() {
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root to run slurmctld/slurmd/munged"; exit 77; fi
  local t
  for t in slurmctld slurmd munged sbatch scontrol scancel sinfo squeue python3 sqlite3; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not found (TOKENMILL_CI_SLURM=1 bash scripts/install-deps.sh)"; exit 77; }
  done
}

slurm_cluster_stop() {
  local p
  for p in $SLURM_JOBS; do scancel "$p" 2>/dev/null || true; done
  for p in "${SLURM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SLURM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}

slurm_logs_tail() { local f; for f in "$T"/log/*; do echo "== $f"; tail -n 15 "$f"; done; }

slurm_cluster_start() {
  mkdir -p "$T/log" "$T/state" "$T/spool" "$T/munge"
  chmod 700 "$T/munge"
  head -c 1024 /dev/urandom > "$T/munge/munge.key"
  chmod 400 "$T/munge/munge.key"
  munged -F --force --socket="$T/munge/munge.sock" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge/munged.pid" --seed-file="$T/munge/seed" --log-file="$T/log/munged.log" \
    > "$T/log/munged.out" 2>&1 &
  SLURM_PIDS+=($!)
  local P1 P2
  read -r P1 P2 < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
  H=$(hostname -s)
  export SLURM_CONF="$T/slurm.conf"
  cat > "$SLURM_CONF" <<CONF
ClusterName=tmtest
SlurmctldHost=$H
SlurmctldPort=$P1
SlurmdPort=$P2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock,cred_expire=10
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/slurmd-%n
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobRequeue=1
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=10
InactiveLimit=0
NodeName=$H CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
  local _
  for _ in $(seq 50); do [ -S "$T/munge/munge.sock" ] && break; sleep 0.1; done
  slurmctld -D -i -f "$SLURM_CONF" > "$T/log/slurmctld.out" 2>&1 &
  SLURM_PIDS+=($!)
  slurmd -D -f "$SLURM_CONF" > "$T/log/slurmd.out" 2>&1 &
  SLURM_PIDS+=($!)
  local up=0
  for _ in $(seq 60); do
    if sinfo -h -n "$H" -o %t 2>/dev/null | grep -qx idle; then up=1; break; fi
    sleep 0.5
  done
  if [ "$up" -ne 1 ]; then echo "SKIP: slurm could not start"; slurm_logs_tail; exit 77; fi
  echo "slurm: node $H idle (ports $P1/$P2)"
}
