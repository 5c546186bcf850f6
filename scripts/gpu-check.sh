#!/usr/bin/env bash
# The GPU check: quantscope's CUDA path on a real GPU host (../shared/GPU.md),
# most important step first, each step bounded, everything it produces in ONE
# archive under $OUT. Run from the repository root on the GPU host:
#
#   bash scripts/gpu-check.sh          # first call: reassembles the bundle, runs steps
#   bash scripts/gpu-check-rest.sh     # a later call: the steps the first did not finish
#
# What it needs there: the checkout (tracked files), and either bin/quantscope
# with .ort/ in place or the bundle of `make gpu-bundle` in .gpu/bundle (its
# parts may arrive in separate copies, each at most 45 MiB; see README).
#
# Time: the whole call stays within BUDGET seconds (default 540: a device
# command may run 600 s), and a step only starts when its own limit still
# fits; each step runs under `timeout` so no step can overrun. Steps that did
# not fit are left for gpu-check-rest.sh, which finds what is done in the work
# directory ($QS_WORK, default ./gpu-work; kept while the machine is). If the
# work directory is gone, SKIP="step step ..." (from steps-done.txt in the
# archive that came back) skips steps already done.
#
# Output: $OUT/gpu-check.tar.xz (OUT defaults to ./gpu-out), written at the
# end of every call, whatever happened (also on Ctrl-C or a failing step):
# the work directory less the model cache: logs, results.jsonl, the report,
# doctor, nvidia-smi, PyTorch figures, TUI captures, steps-done.txt.
#
# EP=cpu QUICK=1 dry-runs the same steps on any machine with small models
# and batch 2 for 32 (LIMIT_SCALE=N multiplies every step's limit, for a
# slow CPU).
set -uo pipefail

start=$(date +%s)
budget=${BUDGET:-540}
out=${OUT:-./gpu-out}
work=${QS_WORK:-./gpu-work}
ep=${EP:-cuda}
dur=${DURATION:-4s}
big=vit-base-16
huge=vit-huge-14
tui_model=deit-small
torch_big=vit_base_patch16_224
torch_huge=vit_huge_patch14_224
bb=32 # the large batch
if [ -n "${QUICK:-}" ]; then
  big=deit-tiny huge=deit-tiny tui_model=deit-tiny dur=1s bb=2
  torch_big=deit_tiny_patch16_224 torch_huge=deit_tiny_patch16_224
fi
mkdir -p "$out" "$work/steps"
bin=$PWD/bin/quantscope
log="$work/check.log"
results="$work/results.jsonl"
export QUANTSCOPE_CACHE_DIR=${QUANTSCOPE_CACHE_DIR:-$work/cache}

note() { echo "== $* ($(date +%T), $(($(date +%s) - start)) s)" | tee -a "$log"; }
left() { echo $((budget - ($(date +%s) - start))); }

# pack writes the one archive; it runs however the script ends.
pack() {
  ls "$work/steps" 2>/dev/null | sort > "$work/steps-done.txt"
  tar -C "$(dirname "$work")" --exclude "$(basename "$work")/cache" \
    -cJf "$out/gpu-check.tar.xz.partial" "$(basename "$work")" 2>>"$log" &&
    mv "$out/gpu-check.tar.xz.partial" "$out/gpu-check.tar.xz"
  echo "gpu-check: $out/gpu-check.tar.xz ($(du -h "$out/gpu-check.tar.xz" 2>/dev/null | cut -f1)); done: $(tr '\n' ' ' < "$work/steps-done.txt")"
  if [ -n "${todo:-}" ]; then
    echo "gpu-check: not run yet:${todo} (bash scripts/gpu-check-rest.sh)"
  fi
}
trap pack EXIT
trap 'exit 130' INT TERM

# step NAME LIMIT_S COMMAND...: runs COMMAND unless NAME is done or skipped,
# and only if LIMIT_S (plus the archive's ~20 s) still fits in the budget.
todo=""
step() {
  local name=$1 limit=$(($2 * ${LIMIT_SCALE:-1}))
  shift 2
  if [ -e "$work/steps/$name" ] || [[ " ${SKIP:-} " == *" $name "* ]]; then
    return 0
  fi
  if [ "$(left)" -lt $((limit + 20)) ]; then
    todo="$todo $name"
    echo "-- $name left for later ($(left) s left, it may take $limit)" | tee -a "$log"
    return 0
  fi
  note "$name"
  # Steps are shell functions: run them in a child bash that timeout can stop.
  timeout --kill-after=10 "$limit" bash -c '"$@"' step "$@" >>"$log" 2>&1
  local rc=$?
  echo "-- $name: exit $rc" | tee -a "$log"
  # A step that ran to its end is done, whatever its exit status (bench exits
  # 4 when an experiment failed: that is a result). A timeout is not.
  if [ $rc -ne 124 ] && [ $rc -ne 137 ]; then
    echo "$rc" > "$work/steps/$name"
  else
    todo="$todo $name"
  fi
}

bench() { # bench ARGS...: one bench into the shared results file, skipping what is recorded
  "$bin" bench --ep "$ep" --duration "$dur" --out "$results" --resume --format markdown "$@"
}

setup() {
  if [ ! -x "$bin" ] || { [ "$ep" = cuda ] && [ ! -f .ort/cuda/libonnxruntime_providers_cuda.so ]; }; then
    [ -f .gpu/bundle/reassemble.sh ] || { echo "no bin/quantscope and no .gpu/bundle: carry the bundle (README)"; return 1; }
    bash .gpu/bundle/reassemble.sh . || return 1
  fi
  "$bin" --help >/dev/null || return 1
  {
    date -u; uname -a; nproc; free -g
    command -v nvidia-smi >/dev/null && nvidia-smi
    command -v python3 && python3 -c 'import sys; print(sys.version)'
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' 2>&1
    echo "PATH=$PATH"; echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; echo "VIRTUAL_ENV=${VIRTUAL_ENV:-}"
  } > "$work/env.txt" 2>&1
  "$bin" doctor > "$work/doctor.txt" 2>&1
  "$bin" doctor --json > "$work/doctor.json" 2>&1
  cat "$work/doctor.txt"
  # The check is about CUDA: without it, say why and stop (doctor says what to do).
  [ "$ep" != cuda ] || grep -q '"cuda_ready": true' "$work/doctor.json"
}

torch_ref() { # torch_ref MODEL FILE
  python3 scripts/torch-reference.py --models "$1" --batch "1,$bb" --modes fp32,tf32,fp16 > "$work/$2" &&
    cat "$work/$2"
}

# tui_capture runs the TUI on a live GPU study in tmux and captures frames.
tui_capture() {
  command -v tmux >/dev/null || { echo "tmux not installed: no TUI capture"; return 0; }
  local s=qs-gpu-check
  tmux kill-session -t $s 2>/dev/null
  tmux new-session -d -s $s -x 160 -y 45 \
    "$bin --models $tui_model --precisions fp16 --batch $bb --duration 8s --out $work/tui.jsonl"
  sleep 4
  tmux capture-pane -p -t $s > "$work/tui-0-setup.txt"
  tmux send-keys -t $s Enter
  for i in 1 2 3 4 5 6; do
    sleep 7
    tmux capture-pane -p -t $s > "$work/tui-$i.txt"
  done
  tmux send-keys -t $s 3                     # the heatmap
  sleep 1
  tmux capture-pane -p -t $s > "$work/tui-7-heatmap.txt"
  tmux kill-session -t $s
}

report() {
  "$bin" report "$results" --out "$work/report" && ls "$work/report"
}

# doctor_bench is the hardware check: GEMM peaks, memory and PCIe, health,
# verdicts (exit 3/4 are findings, not failures of the step).
doctor_bench() {
  "$bin" doctor --bench --ep "$ep" --json ${QUICK:+--quick} > "$work/doctor-bench.json"
  echo "doctor --bench exit $?"
}

export bin ep dur results work tui_model bb
export -f bench torch_ref tui_capture report doctor_bench

graph=()
[ "$ep" = cuda ] && graph=(--cuda-graph)
notf32=()
[ "$ep" = cuda ] && notf32=(--tf32 off)

# Every call: the files in place (the bundle reassembled when they are not),
# the machine described, doctor; without CUDA ready there is nothing to time.
note setup
if ! setup >>"$log" 2>&1; then
  echo "gpu-check: setup failed (see doctor.txt and check.log in the archive)" | tee -a "$log"
  exit 1
fi
# Most important first: how fast is ViT-B/16 FP16, and against PyTorch.
step b16-fp16-b32 150 bench --models "$big" --precisions fp16 --batch "$bb"
step b16-fp16-b1-graph 150 bench --models "$big" --precisions fp16 --batch 1 "${graph[@]}"
step torch-b16 150 torch_ref "$torch_big" torch-b16.jsonl
step doctor-bench 150 doctor_bench
step b16-fp16-b1 120 bench --models "$big" --precisions fp16 --batch 1
step b16-int8 150 bench --models "$big" --precisions int8 --batch "1,$bb"
step b16-fp32-notf32 150 bench --models "$big" --precisions fp16 --batch "1,$bb" "${notf32[@]}"
step h14-fp16-b32 300 bench --models "$huge" --precisions fp16 --batch "$bb"
step tui 90 tui_capture
step b16-unfused 240 bench --models "$big" --precisions fp16 --batch "1,$bb" --optimize=false
step b16-fp16-b32-graph 150 bench --models "$big" --precisions fp16 --batch "$bb" "${graph[@]}"
step torch-h14 240 torch_ref "$torch_huge" torch-h14.jsonl
step h14-fp16-b32-graph 300 bench --models "$huge" --precisions fp16 --batch "$bb" "${graph[@]}"
step report 90 report
tail -40 "$log"
