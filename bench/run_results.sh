#!/usr/bin/env bash
# Reproduce the issue-4 RESULTS (bench/RESULTS.md) on the synthetic world, from the repo root:
#
#   bench/run_results.sh                      # about an hour on 1 CPU thread (7 runs of ~7-9 min)
#   OUT=runs/results2 SEED=1 bench/run_results.sh
#
# 1. snapshots anyseg_model/ and training/ into $OUT/code, so every run of the experiment uses
#    one version of the code even while the working tree changes;
# 2. trains the PML teacher, then five students from it (L_sup + dropout, + MAD, + MAD + UMD,
#    + MAD + UMD + CMD, AnySeg + UMMKD with per-modality norms) and a second seed of the
#    baseline (to see run-to-run noise), each evaluated on all 15 subsets of the held-out split;
# 3. renders the tables into $OUT/table.md.
# The synthetic frames are generated once into $OUT/data and pinned (synthetic:DIR). A run whose
# final checkpoint exists is skipped; an interrupted run continues with --resume.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
OUT=$(mkdir -p "${OUT:-runs/results}" && cd "${OUT:-runs/results}" && pwd)
CONFIG=${CONFIG:-training/configs/synthetic.yaml}
SEED=${SEED:-3407}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-10}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-10}
DATA="synthetic:$OUT/data"

if [ ! -d "$OUT/code" ]; then
  mkdir -p "$OUT/code"
  (cd "$ROOT" && tar --exclude=__pycache__ -cf - anyseg_model training bench) | tar -xf - -C "$OUT/code"
fi
cd "$OUT/code"

run() {  # run NAME FINAL_FILE SCRIPT ARGS...
  local name=$1 final=$2 script=$3
  shift 3
  if [ -f "$OUT/$name/$final" ] && [ -f "$OUT/$name/eval.json" ]; then
    echo "[$(date +%T)] $name: done already"
    return
  fi
  echo "[$(date +%T)] $name: training/$script $*"
  "$PY" "training/$script" --config "$CONFIG" --data "$DATA" --out "$OUT/$name" --resume "$@" \
    run.seed="$SEED" >"$OUT/$name.log" 2>&1
  echo "[$(date +%T)] $name: $(tail -n 1 "$OUT/$name.log")"
}

T="$OUT/teacher/teacher.pt"
run teacher teacher.pt train_teacher.py optim.epochs="$TEACHER_EPOCHS"
S=(--teacher "$T" optim.epochs="$STUDENT_EPOCHS")
run sup student.pt distill.py "${S[@]}" loss.mad=0 loss.umd=0 loss.cmd=0
run mad student.pt distill.py "${S[@]}" loss.umd=0 loss.cmd=0
run mad_umd student.pt distill.py "${S[@]}" loss.cmd=0
run mad_umd_cmd student.pt distill.py "${S[@]}"
run ummkd student.pt distill.py "${S[@]}" model.norm=per_modality loss.ummkd=0.5
SEED=$((SEED + 1)) run sup_seed2 student.pt distill.py "${S[@]}" loss.mad=0 loss.umd=0 loss.cmd=0

"$PY" bench/render_results.py "$OUT" | tee "$OUT/table.md"
