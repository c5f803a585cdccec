#!/usr/bin/env bash
# Runs both benchmarks on a CUDA machine and writes their output into $OUT/ (one .txt per run, plus nvidia-smi.txt
# and summary.txt: 8 files). Run from anywhere:  OUT=/some/folder bash benchmarks/run_gpu.sh
#
# Every run has its own time limit and all of them share BUDGET_S (default 570 s), so the whole script ends within
# about 9.5 minutes; a run that hits its limit keeps the output it printed so far, is marked in summary.txt, and the
# script goes on with the next run (exit status 1 at the end if any run failed or timed out).
#
# Knobs (environment): ML100K (folder of MovieLens 100K; default ../shared/data/ml-100k, then shared/data/ml-100k;
# the repo's data/ml-latest-small stands in when neither exists), DEVICE (default cuda), PYTHON (default python3),
# SYN_USERS / SYN_ITEMS (synthetic scale, default 20000 x 5000), SYN_NEW (new users there, default 1000), BUDGET_S.
set -euo pipefail

: "${OUT:?set OUT to the folder that receives the output}"
mkdir -p "$OUT"
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SYN_USERS=${SYN_USERS:-20000}
SYN_ITEMS=${SYN_ITEMS:-5000}
SYN_NEW=${SYN_NEW:-1000}
BUDGET_S=${BUDGET_S:-570}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # coldstart importable without installing it
export PYTHONUNBUFFERED=1                              # output reaches the files even when a run is cut short

SUMMARY="$OUT/summary.txt"
"$PYTHON" - <<'EOF' 2>&1 | tee "$SUMMARY"
import sys, numpy, pandas, torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"pandas {pandas.__version__}; CUDA available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
EOF

ML100K=${ML100K:-}
if [[ -z "$ML100K" ]]; then
  for candidate in ../shared/data/ml-100k shared/data/ml-100k; do
    if [[ -f "$candidate/u.data" ]]; then ML100K=$candidate; break; fi
  done
fi
if [[ -z "$ML100K" || ! -e "$ML100K" ]]; then
  echo "note: MovieLens 100K not found (ML100K='${ML100K}'); using data/ml-latest-small instead" | tee -a "$SUMMARY"
  ML100K=data/ml-latest-small
  REAL=ml-latest-small
else
  REAL=ml100k
fi

failed=""
run_step() {  # run_step NAME LIMIT_S SCRIPT ARGS...: one benchmark, its output in $OUT/NAME.txt
  local name=$1 limit=$2 rc=0 left
  shift 2
  left=$((BUDGET_S - SECONDS))
  if ((left < 15)); then
    echo "== $name: skipped, the time budget (${BUDGET_S} s) is spent" | tee "$OUT/$name.txt" | tee -a "$SUMMARY"
    failed="$failed $name(skipped)"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit} s): $PYTHON $*" | tee "$OUT/$name.txt"
  local start=$SECONDS
  timeout -k 5 "$limit" "$PYTHON" "$@" 2>&1 | tee -a "$OUT/$name.txt" || rc=$?
  local status="ok"
  if ((rc == 124 || rc == 137)); then status="TIMED OUT after ${limit} s"; elif ((rc != 0)); then status="FAILED (exit $rc)"; fi
  [[ $status == ok ]] || failed="$failed $name"
  echo "== $name: $status, $((SECONDS - start)) s" | tee -a "$OUT/$name.txt" | tee -a "$SUMMARY"
}

run_step "recommend_$REAL" 55 benchmarks/bench_recommend.py --device "$DEVICE" --data "$ML100K" \
  --users 300 --epochs 3 --repeats 3
run_step "fit_$REAL" 80 benchmarks/bench_fit.py --device "$DEVICE" --data "$ML100K" --epochs 3
run_step recommend_synthetic 140 benchmarks/bench_recommend.py --device "$DEVICE" \
  --synthetic-users "$SYN_USERS" --synthetic-items "$SYN_ITEMS" --users "$SYN_NEW" --epochs 1 --repeats 3
run_step fit_synthetic 150 benchmarks/bench_fit.py --device "$DEVICE" --synthetic \
  --synthetic-users "$SYN_USERS" --synthetic-items "$SYN_ITEMS" --epochs 1
run_step catalogue_30k 90 benchmarks/bench_catalogue.py --items 30000 --users 1000,10000
run_step scale_20m 240 benchmarks/bench_scale.py --device "$DEVICE" --sizes 1000000,20000000 --new-users 30000 \
  --steps 100

if [[ -z "$failed" ]]; then verdict="all runs ok"; else verdict="problems:$failed"; fi
echo "total ${SECONDS} s; $verdict" | tee -a "$SUMMARY"
[[ -z "$failed" ]]
