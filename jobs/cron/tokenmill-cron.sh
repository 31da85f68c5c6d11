#!/usr/bin/env bash
# tokenmill-cron.sh — start `tokenmill run` from cron when no worker of the
# queue is alive, so that a machine works through whatever gets submitted.
#
# Every invocation runs `tokenmill run --exclusive`: the database decides, in
# one transaction, whether another worker of this DB is alive (a workers row
# starting/running/draining whose heartbeat is younger than its lease); if one
# is, this invocation exits 0 at once. No pid file: a crashed worker stops
# heartbeating and the next tick after its lease (60 s by default) takes over;
# a worker started by hand or by Slurm on the same DB counts too.
# A short flock (TOKENMILL_LOCK) only keeps two ticks of the same second from
# both loading the model; it is held until the worker has registered itself
# in the DB (at most 10 s), never for the whole run: the DB stays the authority.
#
# Output (both runs' stderr and this script's lines) is appended to
# TOKENMILL_LOG. Exit codes: 0 done or nothing to do; 75 stopped with work
# left (a signal, --time-limit, a preemption notice: the next tick resumes
# the checkpoints); others: tokenmill's error (see the log).
#
# Environment (set it in the crontab, see crontab.example):
#   TOKENMILL_MODEL  model directory (required)
#   TOKENMILL_DB     queue database (default ~/tokenmill/tokenmill.db); local disk
#   TOKENMILL_BIN    the binary (default tokenmill on the PATH)
#   TOKENMILL_ARGS   extra `tokenmill run` options (e.g. "--device cuda --time-limit 55m")
#   TOKENMILL_LOG    log file (default: tokenmill-cron.log next to the DB)
#   TOKENMILL_LOCK   lock file (default: DB.cron.lock)
set -uo pipefail
BIN=${TOKENMILL_BIN:-tokenmill}
MODEL=${TOKENMILL_MODEL:?set TOKENMILL_MODEL to the model directory}
DB=${TOKENMILL_DB:-$HOME/tokenmill/tokenmill.db}
LOG=${TOKENMILL_LOG:-$(dirname "$DB")/tokenmill-cron.log}
LOCK=${TOKENMILL_LOCK:-$DB.cron.lock}
mkdir -p "$(dirname "$DB")" "$(dirname "$LOG")"
exec >> "$LOG" 2>&1
log() { echo "[$(date -u +%Y-%m-%dT%H:%M:%SZ)] tokenmill-cron ($$): $*"; }

exec 9> "$LOCK"
if ! flock -n 9; then
  log "another tick is starting a worker this very moment; leaving it to that one"
  exit 0
fi
# shellcheck disable=SC2086  # TOKENMILL_ARGS is a list of options
"$BIN" run --exclusive --model "$MODEL" --db "$DB" ${TOKENMILL_ARGS:-} 9>&- &
pid=$!
# hold the lock until the worker's row is in the DB (or it has exited)
for _ in $(seq 40); do
  kill -0 "$pid" 2>/dev/null || break
  "$BIN" status --workers --db "$DB" 2>/dev/null | grep -q "pid $pid " && break
  sleep 0.25
done
exec 9>&-
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"
rc=$?
while [ "$rc" -gt 128 ] && kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
case "$rc" in
  0) ;;  # done, or another worker is alive (tokenmill said so above)
  75) log "stopped with work left (exit 75); the next tick resumes it" ;;
  *) log "tokenmill run failed (exit $rc)" ;;
esac
exit "$rc"
