#!/usr/bin/env bash
# The device check for a GPU machine (see ../shared/GPU.md): run from the
# repository root there, with the binary and .ort/ carried over and the CUDA
# plugin sent as xz parts in .gpu/part.* (the README's "On a GPU host" describes
# the carry).
#   bash scripts/gpu-check.sh     # writes everything under $OUT (default ./gpu-out)
# Most important first, so a run cut short still answers the main question:
#   1. doctor;
#   2. vit-base-16 FP32/FP16 at batch 32 and 1, fused (the default), CUDA
#      graphs at batch 1 — the bars: FP16 b32 >= 1.2x PyTorch eager, b1 <= 1 ms;
#   3. the same FP16 unfused (--optimize=false), to show what fusion buys;
#   4. PyTorch eager on the same card (scripts/torch-reference.py) if present;
#   5. deit-tiny FP32/FP16/INT8 at batch 32; vit-base-16 with TF32 off;
#   6. vit-huge-14 FP16 at batch 32; the report.
# EP=cpu QUICK=1 runs the same steps on a CPU with deit-tiny only (a dry run).
set -uo pipefail
out=${OUT:-./gpu-out}
mkdir -p "$out"
bin=${QS_BIN:-./.gpu/quantscope}
[ -x "$bin" ] || bin=./bin/quantscope
ep=${EP:-cuda}
dur=${DURATION:-4s}
big=vit-base-16
huge=vit-huge-14
if [ -n "${QUICK:-}" ]; then big=deit-tiny; huge=deit-tiny; dur=1s; fi

if [ ! -f .ort/cuda/libonnxruntime_providers_cuda.so ] && ls .gpu/part.* >/dev/null 2>&1; then
  mkdir -p .ort/cuda
  cat .gpu/part.* | xz -d > .ort/cuda/libonnxruntime_providers_cuda.so
fi
# The CUDA 13 libraries ship with PyTorch there; doctor finds them itself,
# this only helps it along when the search misses.
if [ "$ep" = cuda ] && [ -z "${QUANTSCOPE_CUDA_LIBS:-}" ]; then
  d=$(dirname "$(find / -name 'libcublasLt.so.13' -not -path '/proc/*' 2>/dev/null | head -1)" 2>/dev/null)
  [ -n "$d" ] && [ "$d" != "." ] && export QUANTSCOPE_CUDA_LIBS="$d:$(dirname "$d")/../cudnn/lib"
fi
export QUANTSCOPE_CACHE_DIR=${QUANTSCOPE_CACHE_DIR:-/tmp/qs-cache}
log="$out/bench.log"
step() { echo "== $* ($(date +%T))" | tee -a "$log"; }
bench() { # name, then bench arguments
  local name=$1; shift
  "$bin" bench --ep "$ep" --duration "$dur" --out "$out/$name.jsonl" --format markdown "$@" \
    > "$out/$name.md" 2>> "$log"
  echo "exit $?" >> "$log"; cat "$out/$name.md"
}

step doctor
command -v nvidia-smi >/dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$bin" doctor > "$out/doctor.txt" 2>&1
"$bin" doctor --json > "$out/doctor.json" 2>&1
cat "$out/doctor.txt"

graph=()
[ "$ep" = cuda ] && graph=(--cuda-graph)
step "$big fused, batch 32"
bench fused-b32 --models "$big" --precisions fp16 --batch 32
step "$big fused, batch 1, CUDA graphs"
bench fused-b1 --models "$big" --precisions fp16 --batch 1 "${graph[@]}"
step "$big unfused"
bench unfused --models "$big" --precisions fp16 --batch 1,32 --optimize=false
if [ "$ep" = cuda ]; then
  step "PyTorch eager"
  python3 scripts/torch-reference.py --models vit_base_patch16_224 --batch 1,32 --modes fp32,tf32,fp16 \
    > "$out/torch.jsonl" 2>> "$log"; cat "$out/torch.jsonl"
fi
step "deit-tiny fp32/fp16/int8"
bench small --models deit-tiny --precisions fp16,int8 --batch 32
if [ "$ep" = cuda ]; then
  step "$big TF32 off"
  bench notf32 --models "$big" --precisions fp16 --batch 32 --tf32 off
fi
step "$huge fp16"
bench huge --models "$huge" --precisions fp16 --batch 32
step report
cat "$out"/*.jsonl 2>/dev/null | grep '"schema"' > "$out/all.jsonl"
"$bin" report "$out/all.jsonl" --out "$out/report" > /dev/null 2>> "$log"
tail -30 "$log"
