#!/usr/bin/env bash
# Reproduce bench/RESULTS.md on the synthetic world, from the repository root:
#
#   bench/run_results.sh                         # runs/study3: the teacher, then 36 students
#   STUDENT_EPOCHS=5 OUT=runs/study bench/run_results.sh   # the longer variant (5 epochs)
#   OUT=runs/study2 JOBS=1 bench/run_results.sh  # elsewhere, one run at a time
#   bench/run_results.sh --only 't_*'            # extra arguments go to bench/run_study.py
#
# 1. bench/run_study.py: a code snapshot in $OUT/code, the pinned synthetic frames in $OUT/data,
#    the PML teacher (10 epochs), then every student row x 3 seeds (3 epochs each), 2 runs at a
#    time with nice -n 5 and 1 torch thread each; finished runs are skipped, interrupted ones
#    resume;
# 2. bench/render_results.py: the tables ($OUT/tables.md), pasted into bench/RESULTS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
OUT=${OUT:-runs/study3}

cd "$ROOT"
"$PY" bench/run_study.py --out "$OUT" --jobs "${JOBS:-2}" \
  --teacher-epochs "${TEACHER_EPOCHS:-10}" --student-epochs "${STUDENT_EPOCHS:-3}" "$@"
"$PY" bench/render_results.py "$OUT" | tee "$OUT/tables.md"
