#!/usr/bin/env bash
# slurm_pipeline.sh — jobs/slurm/pipeline.sh under a REAL Slurm (the one-node
# cluster of tests/cli/lib/slurm_cluster.sh): shard a job into 4, an array of
# 4 array.sbatch tasks (each staged through a node-local copy,
# TOKENMILL_STAGE=always), a merge job after them (afterany). Checks: every
# Slurm job COMPLETED, the merge log says the job completed, every request
# has one result, byte-identical to the same job run on one DB without
# shards (but times, measured cost and prefix-cache hits), the 4 shards are
# 'merged' and their 4 runs are in the origin, no staged copy is left behind.
# Skipped (77) unless root with slurmctld, slurmd, munged on the PATH, or
# when Slurm cannot start here. Takes ~1 min.
set -euo pipefail
BIN=${TOKENMILL_BIN:?}
SRC=${TOKENMILL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=$(readlink -f "$BIN")
# shellcheck source=lib/slurm_cluster.sh
source "$SRC/tests/cli/lib/slurm_cluster.sh"
slurm_cluster_skip_unless_possible
T=$(mktemp -d /tmp/tm-pipe.XXXXXX)
chmod 755 "$T"
trap slurm_cluster_stop EXIT
slurm_cluster_start

(cd "$T" && "$BIN" demo --dir demo > demo.log 2>&1) || { cat "$T/demo.log"; exit 1; }
python3 "$SRC/tests/cli/lib/resume_job.py" make 60 120 > "$T/job.jsonl"
DB="$T/q.db"
JOB=$("$BIN" submit "$T/job.jsonl" --mixed-endpoints --db "$DB" --name pipeline)
sqlite3 "$DB" ".backup '$T/ref.db'"
"$BIN" run --model "$T/demo/model" --db "$T/ref.db" --max-seqs 8 --threads 1 --quiet
"$BIN" results "$JOB" --db "$T/ref.db" -o "$T/ref.jsonl"

mkdir -p "$T/local"
ids=$(TOKENMILL_BIN="$BIN" TOKENMILL_MODEL="$T/demo/model" TOKENMILL_DB="$DB" TOKENMILL_SHARD_DIR="$T/shards" \
      TOKENMILL_ARGS="--max-seqs 4 --threads 1" TOKENMILL_STAGE=always TMPDIR="$T/local" \
      bash "$SRC/jobs/slurm/pipeline.sh" "$JOB" 4 --nodelist="$H" | tail -n 1)
read -r A M <<<"$ids"
SLURM_JOBS="$A $M"
echo "pipeline: array job $A, merge job $M"
[ -n "$A" ] && [ -n "$M" ] || { echo "FAIL: pipeline.sh printed no job ids"; exit 1; }
t0=$SECONDS
until [ -z "$(squeue -h -j "$A,$M" 2>/dev/null)" ]; do
  if [ $((SECONDS - t0)) -ge 150 ]; then
    echo "FAIL: timed out waiting for the pipeline"; squeue; cat "$T"/shards/*.out 2>/dev/null; slurm_logs_tail; exit 1
  fi
  sleep 0.5
done
echo "pipeline finished in $((SECONDS - t0)) s"
showjobs() { scontrol show job "$A" 2>&1; scontrol show job "$M" 2>&1; }
states=$(showjobs | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
if [ "$(echo $states)" != "5 JobState=COMPLETED" ]; then  # 4 array tasks + the merge job
  showjobs; tail -n +1 "$T"/shards/*.out; echo "FAIL: Slurm job states: $states"; exit 1
fi
MOUT="$T/shards/merge-$M.out"
grep -qF "done: job $JOB completed" "$MOUT" || { cat "$MOUT"; echo "FAIL: the merge job did not complete the job"; exit 1; }
for i in 0 1 2 3; do
  grep -qF "copied the shard back to $T/shards/shard-00$i.db" "$T/shards/array-${A}_$i.out" \
    || { cat "$T/shards/array-${A}_$i.out"; echo "FAIL: task $i did not stage"; exit 1; }
done
[ -z "$(ls -A "$T/local")" ] || { echo "FAIL: staged copies left behind:"; ls -l "$T/local"; exit 1; }

"$BIN" results "$JOB" --db "$DB" -o "$T/out.jsonl"
python3 "$SRC/tests/cli/lib/resume_job.py" compare "$T/ref.jsonl" "$T/out.jsonl"
strip() { sed -E 's/"created":[0-9]+/"created":0/; s/"cost":\{[^}]*\}/"cost":{}/; s/"cached_tokens":[0-9]+/"cached_tokens":0/' "$1"; }
cmp -s <(strip "$T/ref.jsonl") <(strip "$T/out.jsonl") || { echo "FAIL: results differ from the one-DB run"; exit 1; }
python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
st = dict(db.execute("select state, count(*) from requests group by state"))
assert st == {"done": 60}, st
assert db.execute("select count(*), count(distinct request_id) from results").fetchone() == (60, 60)
sh = db.execute("select state, requests, merged_requests from shards order by shard_index").fetchall()
assert len(sh) == 4 and all(s[0] == "merged" and s[1] == s[2] > 0 for s in sh), sh
runs = db.execute("select count(*), sum(requests_done) from runs").fetchone()
assert runs == (4, 60), runs   # one run per array task, every request stored by one
assert db.execute("select sum(requests), sum(runs) from worker_costs").fetchone() == (60, 4)
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
print(f"origin: {st}; shards {[s[1] for s in sh]}; runs {runs}")
PY
echo "slurm_pipeline.sh: ok"
