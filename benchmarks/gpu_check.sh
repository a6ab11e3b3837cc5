#!/usr/bin/env bash
# Everything in ufm that needs CUDA, on a one-GPU machine, in under 8 minutes; results in one folder.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      # default: $OUT if set, else gpu-check/
#
# 1. the CUDA tests (tests/test_cuda.py: CUDA = CPU for the losses, no host sync in the step loop);
# 2. bench_loss, bench_ufm and bench_train (bf16, channels-last, compiled) with --device cuda;
# 3. the paper-fig1 n_w = 100 run, 3 epochs, killed after epoch 2 and resumed in a new process: its final
#    weights must equal an uninterrupted run's (resume_check.py).
# 4. when LT_DATA names CIFAR-10 (the python format, or an image folder with LT_DATASET=folder): the CIFAR-10-LT
#    comparison at ratio 100 (preset cifar10-lt: all five runs, seed 0) for LT_EPOCHS epochs each (default 20, which
#    gives the time per epoch of every run; LT_EPOCHS=200 is the full protocol, for a longer lease), summaries in
#    OUT_DIR/lt100/<run>/summary.json.
# Needs torch with CUDA and ufm's dependencies except cvxpy; runs from the source tree (no install needed).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
log="$out/gpu_check.log"
: > "$log"
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run this on a GPU machine')" || exit 1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } >> "$log" 2>&1
failed=()
step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name: $*" | tee -a "$log"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
  [ "$rc" -eq 0 ] || failed+=("$name")
}
step tests 120 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py
step bench_loss 60 python3 benchmarks/bench_loss.py --device cuda
step bench_ufm 90 python3 benchmarks/bench_ufm.py --device cuda
step bench_train 150 python3 benchmarks/bench_train.py --device cuda --compile --epochs 3 --json "$out/bench_train.json"
step resume 120 python3 benchmarks/resume_check.py --device cuda --epochs 3 --kill-after 2 --json "$out/resume.json"
if [ -n "${LT_DATA:-}" ]; then
  step lt100 540 python3 -m cli.main train --preset cifar10-lt --dataset "${LT_DATASET:-cifar10}" --data-root "$LT_DATA" \
    --epochs "${LT_EPOCHS:-20}" --device cuda --compile --out "$out/lt100" --max-memory-gb 60
else
  echo "== lt100: skipped (set LT_DATA to the CIFAR-10 folder to run the CIFAR-10-LT comparison)" | tee -a "$log"
fi
if [ ${#failed[@]} -eq 0 ]; then echo "gpu_check: all passed" | tee -a "$log"; else echo "gpu_check: FAILED: ${failed[*]}" | tee -a "$log"; exit 1; fi
