#!/usr/bin/env bash
# pipeline.sh — one job over many nodes with Slurm, one command:
# shard -> an array of preemption-safe workers, one per shard -> merge.
#
#   TOKENMILL_MODEL=/models/m TOKENMILL_DB=/shared/q/tokenmill.db \
#     jobs/slurm/pipeline.sh JOB 16 --gres=gpu:1 --time=4:00:00
#
# 1. here: `tokenmill shard JOB --into N --dir DIR --db ORIGIN` writes
#    DIR/shard-000.db ... (the job's pending requests, balanced by estimated
#    work; they count as running in the origin until merged);
# 2. sbatch --array=0-(N-1) jobs/slurm/array.sbatch: task i runs `tokenmill
#    run` on DIR/shard-<iii>.db on any node (array.sbatch layout 2: a shard
#    on a network file system is staged to node-local $TMPDIR and copied
#    back; a preempted task checkpoints and requeues itself);
# 3. sbatch --dependency=afterany:<array> jobs/slurm/merge.sbatch: `tokenmill
#    merge DIR/shard-*.db --db ORIGIN` once every task has ended (completed
#    or not: what a task did not finish goes back to pending in the origin;
#    merging again after rerunning a shard takes the rest).
# Prints the shards and the two Slurm job ids. Arguments after N go to sbatch
# for the array tasks (--gres, --time, --partition ...).
#
# Environment (sbatch passes it on to the tasks):
#   TOKENMILL_MODEL        model directory, as the nodes see it (required)
#   TOKENMILL_DB           the origin queue (default ./tokenmill.db); only this
#                          script (step 1) and the merge job open it
#   TOKENMILL_SHARD_DIR    where the shards go (default: next to the origin,
#                          shards/JOB-<UTC time>); must be readable and writable
#                          from every node, and hold no shard files yet
#   TOKENMILL_BIN          the tokenmill binary, as the nodes see it (default:
#                          tokenmill on the PATH)
#   TOKENMILL_GPUS         whole-node tasks: each task gets the node (--exclusive)
#                          and runs `tokenmill run --gpus $TOKENMILL_GPUS` (one
#                          worker per GPU on its shard; needs a tokenmill with
#                          run --gpus). Unset: one worker per task
#   TOKENMILL_MERGE_SBATCH sbatch options for the merge job. Default: pinned to
#                          this host (--nodelist) when it is a Slurm node, as the
#                          origin belongs on this host's local disk (SQLite WAL:
#                          one host); else none, with a warning
#   TOKENMILL_ARGS, TOKENMILL_DRAIN_GRACE, TOKENMILL_MAX_REQUEUES, TOKENMILL_STAGE:
#                          as jobs/slurm/array.sbatch reads them
# Exit: 0 submitted; else the failing step's code (the shards written before a
# failed sbatch come back with `tokenmill merge DIR/shard-*.db --db ORIGIN`).
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  [ $# -ge 2 ] && exit 0 || exit 64
fi
JOB=$1 N=$2
shift 2
case "$N" in '' | *[!0-9]*) echo "pipeline.sh: N must be a number of shards, not '$N'" >&2; exit 64 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${TOKENMILL_BIN:-tokenmill}
: "${TOKENMILL_MODEL:?set TOKENMILL_MODEL to the model directory}"
DB=$(readlink -f "${TOKENMILL_DB:-tokenmill.db}")   # absolute: the jobs run elsewhere
DIR=${TOKENMILL_SHARD_DIR:-$(dirname "$DB")/shards/$JOB-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
log() { echo "pipeline.sh: $*"; }

"$BIN" shard "$JOB" --into "$N" --dir "$DIR" --db "$DB"

extra=()
args=${TOKENMILL_ARGS:-}
if [ -n "${TOKENMILL_GPUS:-}" ]; then
  extra+=(--exclusive)
  args="$args --gpus $TOKENMILL_GPUS"
fi
if ! A=$(TOKENMILL_DB="$DIR/shard-%3a.db" TOKENMILL_ARGS="$args" \
         sbatch --parsable --array=0-$((N - 1)) --job-name="tm-$JOB" --chdir="$DIR" \
                --output="$DIR/array-%A_%a.out" "${extra[@]}" "$@" "$HERE/array.sbatch"); then
  log "sbatch of the array failed; the shards in $DIR are written: \`$BIN merge $DIR/shard-*.db --db $DB\` takes them back"
  exit 69
fi
A=${A%%;*}
if [ -z "${TOKENMILL_MERGE_SBATCH+set}" ]; then
  if scontrol show node "$(hostname -s)" > /dev/null 2>&1; then
    TOKENMILL_MERGE_SBATCH="--nodelist=$(hostname -s)"
  else
    TOKENMILL_MERGE_SBATCH=
    log "warning: $(hostname -s) is not a Slurm node: the merge job opens $DB from wherever Slurm runs it;" \
        "set TOKENMILL_MERGE_SBATCH, or run the merge here when the array has ended (it is idempotent)"
  fi
fi
# shellcheck disable=SC2086  # TOKENMILL_MERGE_SBATCH is a list of options
if ! M=$(TOKENMILL_DB="$DB" TOKENMILL_SHARD_DIR="$DIR" TOKENMILL_JOB="$JOB" \
         sbatch --parsable --dependency="afterany:$A" --job-name="tm-merge-$JOB" --chdir="$DIR" \
                --output="$DIR/merge-%j.out" ${TOKENMILL_MERGE_SBATCH:-} "$HERE/merge.sbatch"); then
  log "sbatch of the merge job failed; when array $A has ended: \`$BIN merge $DIR/shard-*.db --db $DB\`"
  exit 69
fi
M=${M%%;*}
log "array job $A ($N tasks, logs $DIR/array-${A}_*.out), merge job $M (log $DIR/merge-$M.out)"
echo "$A $M"
