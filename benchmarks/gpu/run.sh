#!/usr/bin/env bash
# The GPU figures in one run of at most 8 minutes, on one GPU (the `device` tool's machines):
#   1. bench_gpu.py: decode throughput at 32K and 128K context, M^2LA (eager and CUDA graphs) vs
#      transformers' GQA (sdpa; DynamicCache and StaticCache), 8B-shaped random bf16 weights; whether a
#      512K and a 1M context fit, GQA vs M^2LA;
#   2. bench_serve.py on CUDA: `mcr serve`'s batched decode throughput (when its packages are there).
# Figures go to stdout and to $OUT (or benchmarks/gpu/out) as JSON lines; paste them into
# benchmarks/RESULTS.md ("GPU") with the card's name.
#
# The GPU image has PyTorch and transformers but not this project: it is installed here without its
# dependencies (editable, offline). `mcr serve` needs fastapi/uvicorn/pydantic/llguidance too; carry them
# as wheels in .whl/ (benchmarks/gpu/wheels.sh downloads them on a machine with PyPI).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-benchmarks/gpu/out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
py=python3
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
$py -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$out/install.log" 2>&1 \
  || { echo "editable install failed (see $out/install.log)"; tail -5 "$out/install.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
$py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$out/card.txt"

# 1. the decode table (~4-5 min on an H100: one 8B model build, 8 decode figures, two fits tests)
timeout 330 $py benchmarks/gpu/bench_gpu.py --device cuda --steps 64 | tee "$out/bench_gpu.jsonl"

# 2. mcr serve's batched decode on CUDA (~2 min), only if the serving stack imports
if $py -c "import fastapi, uvicorn, pydantic, llguidance" 2>/dev/null; then
  timeout 150 $py benchmarks/bench_serve.py --device cuda | tee "$out/bench_serve.jsonl"
else
  echo '{"figure": "serve", "skipped": "fastapi/uvicorn/pydantic/llguidance not importable: carry them as wheels (benchmarks/gpu/wheels.sh)"}' \
    | tee "$out/bench_serve.jsonl"
fi
