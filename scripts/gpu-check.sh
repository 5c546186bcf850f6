#!/usr/bin/env bash
# The device check for a GPU machine (see ../shared/GPU.md): run from the
# repository root there, with the binary and .ort/ carried over and the CUDA
# plugin sent as xz parts in .gpu/part.* (DEVELOPERS.md describes the carry).
#   bash scripts/gpu-check.sh            # writes everything under $OUT (default ./gpu-out)
# It reassembles the plugin, runs doctor, then an FP32/FP16/INT8 study of
# deit-tiny and vit-base-16 at batch 1 and 32 on the CUDA EP, with and
# without TF32, and a CPU-vs-CUDA placement check, then writes the report.
set -uo pipefail
out=${OUT:-./gpu-out}
mkdir -p "$out"
bin=${QS_BIN:-./.gpu/quantscope}
[ -x "$bin" ] || bin=./bin/quantscope

if [ ! -f .ort/cuda/libonnxruntime_providers_cuda.so ] && ls .gpu/part.* >/dev/null 2>&1; then
  mkdir -p .ort/cuda
  cat .gpu/part.* | xz -d > .ort/cuda/libonnxruntime_providers_cuda.so
fi
# The CUDA 13 libraries ship with PyTorch there; doctor finds them itself,
# this only helps it along when the search misses.
if [ -z "${QUANTSCOPE_CUDA_LIBS:-}" ]; then
  d=$(dirname "$(find / -name 'libcublasLt.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)" 2>/dev/null)
  [ -n "$d" ] && [ "$d" != "." ] && export QUANTSCOPE_CUDA_LIBS="$d:$(dirname "$d")/../cudnn/lib"
fi

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$bin" doctor > "$out/doctor.txt" 2>&1
"$bin" doctor --json > "$out/doctor.json" 2>&1
cat "$out/doctor.txt"

export QUANTSCOPE_CACHE_DIR=${QUANTSCOPE_CACHE_DIR:-/tmp/qs-cache}
"$bin" bench --models deit-tiny,vit-base-16 --precisions fp32,fp16,int8 --ep cuda \
  --batch 1,32 --duration 5s --out "$out/cuda.jsonl" --format markdown > "$out/cuda.md" 2> "$out/cuda.log"
echo "cuda study exit $?"; cat "$out/cuda.md"
"$bin" bench --models vit-base-16 --precisions fp32,fp16 --ep cuda --ep-option use_tf32=0 \
  --batch 32 --duration 5s --out "$out/cuda-notf32.jsonl" --format markdown > "$out/cuda-notf32.md" 2>> "$out/cuda.log"
cat "$out/cuda-notf32.md"
"$bin" report "$out/cuda.jsonl" --out "$out/report" > /dev/null 2>> "$out/cuda.log"
tail -20 "$out/cuda.log"
