"""Offline-to-online with a PBT population over the training and exploration budget vs the fixed default, at
the same total env and gradient steps, compared on paired evaluation episodes.

Stages (each skipped when its output exists, so an interrupted study continues where it stopped):
  offline  the offline phase of cube-single-play-off2on-cpu.yaml (30k gradient steps), shared by everyone;
  pbt      the PBT sweep (tune_configs/sweeps/cube-single-play-off2on-pbt-cpu.yaml), every trial resuming the
           offline checkpoint (sweep.start_from) for the 20k online env steps; exploit/explore every
           evaluation (5 iterations = 5k env steps);
  default  the fixed default (L_train 1, best-of-N exploration) resumed from the same checkpoint;
  paired   every final checkpoint (offline, default, each PBT trial) on the same paired episodes per budget,
           then the table, a plot and the sweep's HTML report (with the schedule PBT found per trial).

  python benchmarks/pbt_budget_study.py --out runs/pbt-study                 # all stages, about 2 h on 2 cores
  python benchmarks/pbt_budget_study.py --out runs/pbt-study --stages default   # one stage
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402, F401  (environment defaults)

ROOT = Path(__file__).resolve().parents[1]
OFF2ON = ROOT / "tune_configs" / "ogbench" / "cube-single-play-off2on-cpu.yaml"
PBT = ROOT / "tune_configs" / "sweeps" / "cube-single-play-off2on-pbt-cpu.yaml"
STAGES = ("offline", "pbt", "default", "paired")
PAIRED_JSON = "paired_success.json"
DONE = "stage_done"  # written into a train stage's folder when it finished


def train_stage(folder: Path, args: list[str], start: Path | None = None) -> None:
    """A ``vgf-ray train`` stage: skipped when done, resumed from its own checkpoint when interrupted."""
    if (folder / DONE).exists():
        return
    own = folder / "checkpoint"
    resume = own if (own / "rllib_checkpoint.json").exists() else start
    run_cli(["train", str(OFF2ON), *(["--resume", str(resume)] if resume else []), "--set", f"output_dir={folder}",
             *args])
    (folder / DONE).write_text("finished\n")


def run_cli(args: list[str]) -> None:
    from vgf_ray.cli import main

    print("vgf-ray " + " ".join(args), flush=True)
    code = main(args)
    if code:
        raise SystemExit(f"vgf-ray {args[0]} failed with exit code {code}")


def common_sets(out: Path, eval_interval: int) -> list[str]:
    return ["--set", f"mlflow.tracking_uri=sqlite:///{out.resolve()}/mlflow.db",
            "--set", f"evaluation.interval={eval_interval}"]


def final_checkpoints(out: Path) -> dict[str, Path]:
    """Name -> final checkpoint folder of every arm that has one."""
    found = {}
    for name in ("offline", "default"):
        if (out / name / DONE).exists():
            found[name] = out / name / "checkpoint"
    sweep = out / "pbt"
    if sweep.is_dir():
        from vgf_ray.experiment.lineage import trial_id

        for trial in sorted(d for d in sweep.iterdir() if (d / "checkpoint" / "rllib_checkpoint.json").exists()):
            found[f"pbt {trial_id(trial.name)}"] = trial / "checkpoint"
    return found


def paired_stage(out: Path, episodes: int, budgets: list[int]) -> None:
    import torch
    from transport_diagnostics import load_networks, paired_success

    from vgf_ray.experiment.lineage import read_lineage

    torch.set_num_threads(1)
    path = out / PAIRED_JSON
    results = json.loads(path.read_text()) if path.exists() else {}
    for name, checkpoint in final_checkpoints(out).items():
        if name in results:
            continue
        print(f"--- {name}: {checkpoint}", flush=True)
        nets = load_networks(str(checkpoint))
        success = paired_success(nets, "cube-single-play", budgets, nets.hp.vgf_lr, episodes)
        lineage = read_lineage(checkpoint.parent)
        results[name] = {"success": {str(b): s for b, s in success.items()}, "episodes": episodes,
                         "schedule": [{"iteration": s["iteration"], "train_vgf_steps": s["values"]["train_vgf_steps"],
                                       "exploration_steps": s["values"]["exploration_steps"]} for s in lineage]}
        path.write_text(json.dumps(results, indent=2))
    print(f"\n| arm | {' | '.join(f'L={b}' for b in budgets)} | schedule (iteration: L_train/L_explore) |")
    print("|---|" + "---|" * (len(budgets) + 1))
    for name, row in results.items():
        schedule = ", ".join(f"{s['iteration']}: {s['train_vgf_steps']}/{s['exploration_steps']}"
                             for s in row["schedule"])
        print(f"| {name} | " + " | ".join(f"{row['success'][str(b)]:.2f}" for b in budgets) + f" | {schedule} |")
    plot_paired(results, budgets, out / "paired_success.png", episodes)


def plot_paired(results: dict, budgets: list[int], path: Path, episodes: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(results), 1)
    for i, (name, row) in enumerate(results.items()):
        ax.bar([b + i * width for b in range(len(budgets))], [row["success"][str(b)] for b in budgets], width,
               label=name)
    ax.set_xticks([b + 0.4 - width / 2 for b in range(len(budgets))], [f"L={b}" for b in budgets])
    ax.set_ylabel(f"success ({episodes} paired episodes)")
    ax.set_title("cube-single-play, offline-to-online: PBT budget vs fixed default")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/pbt-study")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--offline-iterations", type=int, default=30, help="the config's offline phase: 30k steps")
    parser.add_argument("--eval-interval", type=int, default=5, help="evaluate (and let PBT act) every N iterations")
    parser.add_argument("--episodes", type=int, default=30, help="paired episodes per budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {common.machine()}")
    offline = out / "offline" / "checkpoint"
    sets = common_sets(out, args.eval_interval)
    if "offline" in args.stages:
        train_stage(out / "offline", ["--set", f"iterations={args.offline_iterations}",
                                      "--set", "name=pbt-study-offline", *sets])
    if not (out / "offline" / DONE).exists():
        raise SystemExit(f"{out / 'offline'}: the offline stage has not finished; run --stages offline first")
    if "pbt" in args.stages and not (out / "pbt" / "sweep_summary.json").exists():
        resume = ["--resume"] if (out / "pbt" / "tuner.pkl").exists() else []
        run_cli(["tune", str(PBT), *resume, "--set", f"output_dir={out / 'pbt'}",
                 "--set", f"sweep.start_from={offline}",
                 "--set", f"sweep.scheduler.perturbation_interval={args.eval_interval}", *sets])
    if "default" in args.stages:
        train_stage(out / "default", ["--set", "name=pbt-study-default", *sets], start=offline)
    if "paired" in args.stages:
        paired_stage(out, args.episodes, args.budgets)
        from vgf_ray.report import write_report

        if (out / "pbt").is_dir():
            print(f"report: {write_report(out / 'pbt')}")


if __name__ == "__main__":
    main()
