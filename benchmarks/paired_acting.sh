#!/usr/bin/env bash
# Acting latency of two checkouts, alternating process by process so that machine drift hits both equally.
# Usage: benchmarks/paired_acting.sh BEFORE_DIR AFTER_DIR [ROUNDS=4] [CONFIG=paper] [PATH_NAME=fused] [DTYPE=fp32]
# e.g.   git worktree add --detach ../before <commit> && benchmarks/paired_acting.sh ../before .
# Prints ms per action at L = 0 / 1 / 3 (median of 3 x 50 calls, benchmarks/acting_latency.py's latency_ms).
set -euo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd)
rounds=${3:-4}; config=${4:-paper}; path_name=${5:-fused}; dtype=${6:-fp32}
python=${PYTHON:-python}
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 MUJOCO_GL=egl
for round in $(seq 1 "$rounds"); do
  for tree in "$before" "$after"; do
    (cd "$tree" && PYTHONPATH="$tree" "$python" - "$config" "$path_name" "$dtype" "$round" "$tree" <<'PY'
import sys

sys.path.insert(0, "benchmarks")
import acting_latency
import common

config, path_name, dtype, round_, tree = sys.argv[1:]
module = acting_latency.make_module(common.CONFIGS[config], dtype == "bf16", path_name)
figures = [acting_latency.latency_ms(module, steps, 50, 3)[0] for steps in acting_latency.BUDGETS]
print(f"round {round_} {tree}: {config} {dtype} {path_name} ms at L=0/1/3: "
      + " / ".join(f"{ms:.3f}" for ms in figures), flush=True)
PY
) 2>&1 | grep "ms at L="
  done
done
