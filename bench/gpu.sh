#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md in one run (under 8 minutes on one NVIDIA GPU), printed as
# a markdown block to paste there:
#   1. anyseg_b0, 4 modalities, 1024x1024: torch fp32 / fp16 / bf16 (and peak GPU memory)
#   2. the same through onnxruntime's CUDA / TensorRT providers, against torch
#   3. the node's preprocessing (and the rest of a frame set) on the GPU vs on the CPU
#   4. the node end to end over loopback DDS, 30 frame sets/s from bench/feeder.py: labels/s,
#      latency p50 / p95, node GPU memory; backend torch (fp16 autocast) and onnxruntime
#
#   bench/gpu.sh                 # on the GPU machine (onnxruntime-gpu for step 2 and 4b)
#   bench/gpu.sh --device cpu    # dry run of every step on the CPU, tiny sizes (make test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEVICE=cuda
if [[ "${1:-}" == "--device" ]]; then DEVICE=${2:?--device needs cpu or cuda}; fi
case "$DEVICE" in
  cuda) MODEL=anyseg_b0; SIZE=1024x1024; DTYPES=fp32,fp16,bf16; REPEATS=20; RATE=30
        POINTS=100000; SECONDS_=20; WARMUP=5 ;;
  cpu)  MODEL=anyseg_tiny; SIZE=64x48; DTYPES=fp32,bf16; REPEATS=2; RATE=5
        POINTS=5000; SECONDS_=2; WARMUP=1 ;;
  *) echo "gpu.sh: error: --device $DEVICE: use cuda or cpu (dry run)" >&2; exit 2 ;;
esac
if [[ "$DEVICE" == cuda ]]; then
  GPU=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader)
else
  GPU="none (dry run on the CPU: tiny sizes, figures mean nothing)"
fi
START=$(date +%s)
echo "### GPU run: $GPU"
echo
echo "\`bench/gpu.sh${1:+ $*}\`, $(date -u +%Y-%m-%d), torch $($PY -c 'import torch; print(torch.__version__)')"
echo
echo "#### 1. torch, $MODEL, $SIZE"
$PY bench/bench_model.py --parts fold --device "$DEVICE" --models "$MODEL" --sizes "$SIZE" \
  --dtypes "$DTYPES" --repeats "$REPEATS" | tail -n +3
echo "#### 2. onnxruntime vs torch, $MODEL, $SIZE"
$PY bench/bench_model.py --parts backends --device "$DEVICE" --models "$MODEL" --sizes "$SIZE" \
  --repeats "$REPEATS" | tail -n +3
echo "#### 3. one frame set, model excluded: preprocessing on $DEVICE vs cpu ($SIZE + $POINTS points)"
for dev in "$DEVICE" cpu; do
  $PY bench/bench_ros.py --parts frame --size "$SIZE" --points "$POINTS" --device "$dev" \
    --repeats "$REPEATS"
done
echo
echo "#### 4. the node end to end, $MODEL, $SIZE, feeder $RATE Hz + $POINTS points"
for backend in torch onnxruntime; do
  $PY bench/bench_ros.py --parts e2e --e2e-model "$MODEL" --e2e-size "$SIZE" --device "$DEVICE" \
    --backend "$backend" --input-size "$SIZE" --rate "$RATE" --points "$POINTS" \
    --seconds "$SECONDS_" --warmup "$WARMUP" --threads 0
done
echo
echo "(whole run: $(( $(date +%s) - START )) s)"
