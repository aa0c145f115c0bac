#!/usr/bin/env bash
# The GPU check in one call, for any CUDA machine:
#   1. environment - torch, CUDA and the GPU;
#   2. tests       - the core numerics tests on the GPU (VGF_TEST_DEVICE=cuda): every fast path against the fp32
#                    eager reference, learning on a small problem, the TD target, the target-update rule;
#   3. learner     - VGFAgent gradient steps/s at the paper config, fp32 and bf16, TD-target transport eager and
#                    fused (learner_throughput.py --no-rllib);
#   4. acting      - ms per acting call at the paper config, one observation per call (an EnvRunner's env step)
#                    and 64 (vectorised envs), eager and fused paths (acting_latency.py --no-rllib --device cuda);
#   5. compiled    - the torch.compile paths' timings, last: compiling them on a GPU takes minutes.
# Needs python3 with a CUDA torch, numpy, pytest and hypothesis; not Ray, gymnasium or MuJoCo (RLlib's GPU learner
# is not part of this check). Each step has its own time limit, so a slow one cannot starve the rest; what a step
# printed before its limit is kept. Logs go to $OUT (default ./gpu-check), one file per step. Exit status 1 if any
# step failed. Results of a run: benchmarks/results/gpu-check-*/.
#
# Usage: bash benchmarks/gpu_check.sh              (fails at once where torch sees no GPU)
#        bash benchmarks/gpu_check.sh --allow-cpu  (a rehearsal on a CPU machine: the same steps on the CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "gpu_check: $python cannot import torch (set PYTHON to the interpreter that has it)" >&2
  exit 2
fi
device=cuda
if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  if [ "${1:-}" != "--allow-cpu" ]; then
    echo "gpu_check: torch sees no CUDA device here (--allow-cpu rehearses the check on the CPU)" >&2
    exit 2
  fi
  device=cpu
fi

status=0
step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.txt, remember a failure
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s)"
  timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "gpu_check: step $name failed (exit $rc$([ "$rc" -eq 124 ] && echo ", time limit"))" | tee -a "$out/$name.txt"
    status=1
  fi
}

step environment 20 "$python" -c "
import platform, torch
print('python', platform.python_version(), '| torch', torch.__version__, '| CUDA build', torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('GPU', p.name, f'{p.total_memory / 2**30:.0f} GiB', p.multi_processor_count, 'SMs')
else:
    print('no GPU: a CPU rehearsal')"
step tests 150 env VGF_TEST_DEVICE="$device" "$python" -m pytest -q -p no:cacheprovider --show-capture=no \
  tests/test_fused_acting.py tests/test_vgf_core.py tests/test_transport.py
step learner 75 "$python" benchmarks/learner_throughput.py --no-rllib --configs paper \
  --target-transport eager fused --dtypes fp32 bf16 --steps 20 --repeats 3
step acting 60 "$python" benchmarks/acting_latency.py --no-rllib --device "$device" --configs paper \
  --paths eager fused --batch 1 64 --calls 50 --repeats 3
step compiled 240 "$python" benchmarks/acting_latency.py --no-rllib --device "$device" --configs paper \
  --paths compiled --dtypes fp32 --calls 50 --repeats 3
exit "$status"
