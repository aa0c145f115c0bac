"""Learning figures from a training run: success per test-time budget at every evaluation, and whether VGF's
best budget beats budget 0 (best-of-N) at the end.

Produce the run first, e.g. (about 40 minutes on 2 cores):
    vgf-ray train tune_configs/ogbench/cube-single-play-cpu.yaml
then: python benchmarks/learning_report.py runs/cube-single-play-cpu [--evaluation runs/.../evaluation.json]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--evaluation", action="append", default=[],
                        help="extra evaluation.json files (from vgf-ray evaluate) to tabulate")
    args = parser.parse_args()
    run = Path(args.run_dir)
    history = json.loads((run / "history.json").read_text())
    interval = int(yaml.safe_load((run / "experiment.yaml").read_text())["evaluation"]["interval"])
    budgets = sorted({int(k.split("/")[0].split("_")[1]) for row in history for k in row
                      if k.startswith("budget_") and k.endswith("/success")})
    print(f"run: {run}")
    print(f"{'phase':<8}{'step':>8}{'grad steps':>12}" + "".join(f"{f'L={b}':>8}" for b in budgets)
          + "   (success rate)")
    last = None
    for row in history:
        if row["iteration"] % interval == 0 and math.isfinite(row.get(f"budget_{budgets[0]}/success", math.nan)):
            last = row
            phase = "online" if row.get("phase", 0) else "offline"
            print(f"{phase:<8}{row.get('step', row['grad_steps']):>8}{row['grad_steps']:>12}"
                  + "".join(f"{row[f'budget_{b}/success']:>8.2f}" for b in budgets))
    if last is not None:
        best = max(budgets, key=lambda b: last[f"budget_{b}/success"])
        verdict = "beats" if last[f"budget_{best}/success"] > last[f"budget_{budgets[0]}/success"] else "does not beat"
        print(f"final: best budget L={best} ({last[f'budget_{best}/success']:.2f}) {verdict} budget 0 "
              f"({last[f'budget_{budgets[0]}/success']:.2f})")
    for path in args.evaluation:
        results = json.loads(Path(path).read_text())
        shown = {k: v for k, v in results.items() if k.startswith("budget_")}
        print(f"{path}: " + "  ".join(f"{k.replace('budget_', 'L=')}: {v['success']:.2f} ({v['episodes']} ep)"
                                      for k, v in shown.items()))


if __name__ == "__main__":
    main()
