"""Learning study at CPU scale: VGF variants and the BC/IQL/CQL baselines on one generated task, several seeds.

Every arm is an experiment of the task's CPU config (``tune_configs/ogbench/<task>-cpu.yaml``, or
``tune_configs/mujoco/<task>-cpu.yaml`` for a locomotion task such as ``hopper-medium``) with a few keys changed,
run through ``vgf-ray train``'s own loop (same data, evaluation episodes, metrics). Each (arm, seed) run writes its
folder under ``--out``; a finished one is reused and an interrupted one resumes exactly from its last checkpoint
(every 2000 steps), so the study can be stopped and continued. Reported:
success per test-time budget L as mean +- standard error over seeds, each seed's value from ``--episodes`` paired
episodes (the same initial states at every budget and for every arm), the best L > 0's paired gain over L = 0, and
three plots: success against L per arm, against gradient steps (VGF per budget, each baseline), and each arm's gain of
L > 0 over L = 0 against gradient steps. ``--metric return`` reports the episode return instead (partial progress
on tasks no run solves yet, e.g. puzzle-3x3-play at this scale), into ``table-return.md`` and ``return_*.png``;
``--metric score`` the normalized score of a locomotion task (0 random, 100 the shipped expert).

Usage (per run of 20k steps here: VGF 8-13 min, IQL about 7, CQL about 40 (RLlib's; docs: Baselines));
``--report`` tabulates what a folder holds (arms with different seed sets) without training:
    python benchmarks/learning_study.py --task cube-single-play --steps 20000 --seeds 0 1 2 \
        --arms vgf vgf-ltrain0 vgf-ltrain3 vgf-no-bwgrad vgf-min avgf bc iql --out runs/study-cube
    --test-step-sizes 0.01 0.02 --test-alphas 2.0   # also: each trained VGF run at other test-time settings
    python benchmarks/learning_study.py --task cube-single-play --report --arms vgf vgf-min bc iql --out runs/study-cube
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path

import numpy as np

from vgf_ray.metrics import GRAD_STEPS, RETURN, SCORE, SUCCESS, budget_key, budget_metric
from vgf_ray.seed_stats import mean_se, transport_gain

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (sets the Ray/MuJoCo environment defaults)

CPU_MODEL = {"model": {"fcnet_hiddens": [256, 256]}}  # the baselines at VGF's CPU-config width
ARMS: dict[str, dict] = {
    "vgf": {},
    "vgf-ltrain0": {"training.train_vgf_steps": 0},
    "vgf-ltrain3": {"training.train_vgf_steps": 3},
    "vgf-no-bwgrad": {"training.bandwidth_grad": False},
    "vgf-min": {"training.train_q_agg": "min", "training.vgf_q_agg": "min"},
    "vgf-step0.1": {"training.vgf_lr": 0.1},
    "vgf-alpha0.1": {"training.vgf_alpha": 0.1},
    "avgf": {"training.variant": "avgf"},
    "vgf-data30k": {"dataset.num_transitions": 30000},
    "vgf-data300k": {"dataset.num_transitions": 300000},
    "bc": {"algorithm": "bc", "training.bc": CPU_MODEL},
    "iql": {"algorithm": "iql", "training.iql": CPU_MODEL},
    "cql": {"algorithm": "cql", "training.cql": CPU_MODEL},
    # RLlib's own multi-stream critics (tanh fusion layers) instead of MLP([s, a]): vgf_ray.baselines.q_network
    "iql-multistream": {"algorithm": "iql", "training.iql": {**CPU_MODEL, "q_network": "multi_stream"}},
    # RLlib's tanh-squashed Gaussian policy instead of FQL's unit-variance Gaussian: vgf_ray.baselines.policy
    "iql-squashed": {"algorithm": "iql", "training.iql": {**CPU_MODEL, "policy": "squashed"}},
    "cql-multistream": {"algorithm": "cql", "training.cql": {**CPU_MODEL, "q_network": "multi_stream"}},
    # IQL with its authors' D4RL locomotion settings (Kostrikov et al., 2022): expectile 0.7, temperature 3
    "iql-locomotion": {"algorithm": "iql", "training.iql": {**CPU_MODEL, "expectile": 0.7, "beta": 3.0}},
}
CONFIG_ROOT = Path(__file__).resolve().parents[1] / "tune_configs"


def task_config(task: str) -> Path:
    """The task's CPU experiment file: OGBench's, else the locomotion one; a clear error naming both."""
    for domain in ("ogbench", "mujoco"):
        path = CONFIG_ROOT / domain / f"{task}-cpu.yaml"
        if path.exists():
            return path
    raise SystemExit(f"no tune_configs/ogbench/{task}-cpu.yaml or tune_configs/mujoco/{task}-cpu.yaml")


def is_baseline(arm: str) -> bool:
    """Whether ``arm`` trains BC/IQL/CQL (no transport budget) rather than VGF; test-time rows (``vgf@...``) are not."""
    return bool(ARMS.get(arm, {}).get("algorithm"))


RESULTS_JSON = "study.json"
CHECKPOINT_EVERY = 2  # iterations (of 1000 steps) between checkpoints: an interrupted run resumes from the last
PLOTS = ("vs_budget", "vs_steps", "gain_vs_steps")  # each as <metric>_<plot>.png
STEP_TAG, ALPHA_TAG = "test-step", "test-alpha"  # folders of a run's test-time evaluations


def arm_experiment(task: str, arm: str, seed: int, steps: int, transitions: int | None, episodes: int,
                   evaluations: int, budgets: list[int], out: Path, extra: list[str] = ()) -> dict:
    """The experiment of one (arm, seed); ``transitions`` None keeps the config's dataset size."""
    from vgf_ray.experiment.schema import apply_override, load_experiment

    exp = copy.deepcopy(load_experiment(task_config(task)))
    interval = max(1, steps // 1000 // evaluations)
    size = [] if transitions is None else [f"dataset.num_transitions={transitions}"]
    for assignment in (f"seed={seed}", f"iterations={steps // 1000}", f"checkpoint_every={CHECKPOINT_EVERY}", *size,
                       "training.updates_per_iteration=1000",
                       f"training.offline_steps={steps}", f"evaluation.interval={interval}",
                       f"evaluation.episodes={episodes}", f"evaluation.budgets={budgets}",
                       "training.eval_step_size=null", *extra):  # evaluated as trained; other steps: --test-step-sizes
        apply_override(exp, assignment)
    for key, value in ARMS[arm].items():
        section, _, name = key.partition(".")
        if name:
            exp[section][name] = copy.deepcopy(value)
        else:
            exp[key] = value
    exp["name"] = f"{arm}-s{seed}"
    exp["output_dir"] = str(out / arm / f"seed{seed}")
    exp["mlflow"]["tracking_uri"] = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    exp["mlflow"]["experiment"] = f"study-{task}"
    return exp


def run_finished(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` trained all its iterations (its history that long, its checkpoint saved)."""
    import yaml

    files = [run_dir / name for name in ("history.json", "experiment.yaml", "checkpoint")]
    if not all(f.exists() for f in files):
        return False
    planned = yaml.safe_load(files[1].read_text())["iterations"]
    return len(json.loads(files[0].read_text())) >= int(planned)


def run_arm(exp: dict) -> list[dict]:
    """Train one (arm, seed), reuse it when finished, or resume it exactly from its last checkpoint."""
    from vgf_ray.experiment.runner import run_experiment

    run_dir = Path(exp["output_dir"])
    if run_finished(run_dir):
        return json.loads((run_dir / "history.json").read_text())
    saved = run_dir / "checkpoint"
    resume = str(saved) if (saved / "rllib_checkpoint.json").exists() else None
    return run_experiment(exp, progress=True, resume=resume).history


def finished_seeds(out: Path, arm: str) -> list[int]:
    """Seeds of ``arm`` whose run under ``out`` finished."""
    return sorted(int(d.name[4:]) for d in (out / arm).glob("seed*") if run_finished(d))


def stored_test_settings(run_dir: Path) -> list[tuple[float | None, float | None]]:
    """``(step size, alpha)`` of every test-time evaluation stored beside a run (``test-step<S>``/``test-alpha<A>``)."""
    found = []
    for folder in sorted(run_dir.glob("test-*")):
        if not (folder / "evaluation.json").exists():
            continue
        if folder.name.startswith(STEP_TAG):
            found.append((float(folder.name[len(STEP_TAG):]), None))
        elif folder.name.startswith(ALPHA_TAG):
            found.append((None, float(folder.name[len(ALPHA_TAG):])))
    return found


def evaluate_with_test_settings(run_dir: Path, budgets: list[int], episodes: int, step_size: float | None,
                                alpha: float | None, grad_steps: int, metric: str) -> dict[str, list]:
    """The trained run's final checkpoint evaluated with another test-time step size or alpha (no retraining):
    ``{budget: [(grad_steps, metric)]}``. Stored beside the run and reused."""
    from vgf_ray.experiment import evaluate_checkpoint, init_ray
    from vgf_ray.experiment.schema import DEFAULTS

    tag = f"{STEP_TAG}{step_size}" if step_size is not None else f"{ALPHA_TAG}{alpha}"
    out = run_dir / tag
    stored = out / "evaluation.json"
    if stored.exists():
        results = json.loads(stored.read_text())
    else:
        init_ray({"ray": DEFAULTS["ray"]})
        results = evaluate_checkpoint(str(run_dir / "checkpoint"), budgets, episodes, step_size, out, alpha)
    return {str(b): [(grad_steps, results[budget_key(b)][metric])] for b in budgets}


def curves(history: list[dict], budgets: list[int], metric: str) -> dict[int, list[tuple[int, float]]]:
    return {b: [(row[GRAD_STEPS], row[budget_metric(b, metric)]) for row in history
                if math.isfinite(row.get(budget_metric(b, metric), math.nan))] for b in budgets}


def final_values(per_seed: dict) -> dict[str, dict[int, float]]:
    """Each seed's last evaluation: ``{seed: {budget: value}}``."""
    return {seed: {int(b): c[-1][1] for b, c in curve.items() if c} for seed, curve in per_seed.items()}


def gains_over_steps(per_seed: dict) -> list[tuple[int, int, float, float]]:
    """``(grad_steps, L, mean, se)`` of the best paired gain of L > 0 over L = 0 at every evaluation all seeds
    share: how far transport is from paying, along training."""
    steps = set.intersection(*({s for c in curve.values() for s, _ in c} for curve in per_seed.values()))
    rows = []
    for step in sorted(steps):
        at_step = {seed: {int(b): v for b, c in curve.items() for s, v in c if s == step}
                   for seed, curve in per_seed.items()}
        gain = transport_gain(at_step)
        if gain is not None:
            rows.append((step, *gain))
    return rows


def arm_cells(per_seed: dict, budgets: list[int]) -> list[str]:
    """One arm's row: mean ± s.e. over seeds at each budget, then the paired gain of its best L > 0."""
    cells = []
    for b in budgets:
        finals = [c[str(b)][-1][1] for c in per_seed.values() if c.get(str(b))]
        if finals:
            m, se = mean_se(finals)
            cells.append(f"{m:.2f} ± {se:.2f}" if math.isfinite(se) else f"{m:.2f}")
        else:
            cells.append("-")
    gain = transport_gain(final_values(per_seed))
    cells.append("-" if gain is None else f"L={gain[0]}: {gain[1]:+.2f}" + (
        f" ± {gain[2]:.2f}" if math.isfinite(gain[2]) else ""))
    return cells


def table(results: dict, budgets: list[int], episodes: int, metric: str = SUCCESS) -> str:
    lines = ["| arm | seeds | " + " | ".join(f"L={b}" for b in budgets) + " | best L>0 minus L=0 (paired) |",
             "|---|---|" + "---|" * (len(budgets) + 1)]
    for arm, per_seed in results.items():
        lines.append(f"| {arm} | {len(per_seed)} | " + " | ".join(arm_cells(per_seed, budgets)) + " |")
    return "\n".join(lines) + (f"\n\n{metric}: mean ± standard error over seeds; each seed: {episodes} paired "
                               "episodes per L")


# The arms a study's record puts in the README's headline table (the algorithms, not their variants).
HEADLINE_ARMS = {"vgf": "VGF", "bc": "BC (RLlib)", "iql": "IQL (RLlib)",
                 "iql-locomotion": "IQL (RLlib, locomotion settings)", "cql": "CQL (RLlib)"}


def write_study_record(out: Path, task: str, results: dict, budgets: list[int], metric: str, steps: int,
                       transitions: int | None) -> None:
    """``out/record.json``: the folder's tables (success and return, where reported), its plots, and headline rows
    for the main arms in ``metric``."""
    from records import write_record

    names = ("table.md", f"table-{RETURN}.md", f"table-{SCORE}.md")
    tables = [(out / name).read_text().strip() for name in names if (out / name).exists()]
    headline = [{"task": task, "algorithm": label, "metric": metric,
                 "budgets": dict(zip(map(str, budgets), arm_cells(results[arm], budgets)[:-1], strict=True))}
                for arm, label in HEADLINE_ARMS.items() if arm in results]
    write_record(out, name=out.name, kind="study", table="\n\n".join(tables), headline=headline,
                 title=f"{task}: {metric} per test-time budget ("
                       + (f"{transitions} generated transitions, " if transitions else "the task's dataset, ")
                       + f"{steps} gradient steps)", plots=sorted(p.name for p in out.glob("*.png")))


def plot(results: dict, budgets: list[int], out: Path, metric: str = SUCCESS) -> None:
    """``<metric>_vs_budget.png``, ``<metric>_vs_steps.png`` (the ``vgf`` arm per budget, each baseline dashed)
    and ``<metric>_gain_vs_steps.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.cm.tab20(np.linspace(0.0, 1.0, 20))  # matplotlib's default cycle repeats after 10 arms
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (arm, per_seed) in enumerate(results.items()):
        shown = [b for b in budgets if all(c.get(str(b)) for c in per_seed.values())]
        stats = [mean_se([c[str(b)][-1][1] for c in per_seed.values()]) for b in shown]
        ax.errorbar(shown, [m for m, _ in stats], yerr=[0 if math.isnan(s) else s for _, s in stats],
                    marker="o", capsize=3, label=arm, color=colors[i % len(colors)])
    limits = {"ylim": (-0.02, 1.02)} if metric == SUCCESS else {}
    ax.set(xlabel="test-time budget L (transport steps)", ylabel=f"{metric} (final evaluation)",
           title=f"{metric} against L, mean ± s.e. over seeds", **limits)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{metric}_vs_budget.png", dpi=120)
    plt.close(fig)
    vgf = results.get("vgf")
    baselines = {arm: per_seed for arm, per_seed in results.items() if is_baseline(arm)}
    if vgf or baselines:
        fig, ax = plt.subplots(figsize=(6, 4))
        lines = [(f"VGF L={b}", vgf, b, "-") for b in budgets] if vgf else []
        lines += [(arm, per_seed, 0, "--") for arm, per_seed in baselines.items()]  # no budget: their policy
        for label, per_seed, b, style in lines:
            steps = sorted({s for c in per_seed.values() for s, _ in c.get(str(b), [])})
            means = [np.mean([v for c in per_seed.values() for s2, v in c.get(str(b), []) if s2 == s]) for s in steps]
            ax.plot(steps, means, style, marker="o", label=label)
        ax.set(xlabel="gradient steps", ylabel=f"{metric} (mean over seeds)",
               title=f"{metric} against steps (VGF per budget, baselines dashed)", **limits)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{metric}_vs_steps.png", dpi=120)
        plt.close(fig)
    trained = {arm: gains_over_steps(per_seed) for arm, per_seed in results.items() if "@" not in arm}
    trained = {arm: rows for arm, rows in trained.items() if rows}
    if trained:
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, (arm, rows) in enumerate(trained.items()):
            errors = [0 if math.isnan(r[3]) else r[3] for r in rows]
            ax.errorbar([r[0] for r in rows], [r[2] for r in rows], yerr=errors, marker="o", capsize=3, label=arm,
                        color=colors[i % len(colors)])
        ax.axhline(0.0, color="gray", lw=0.8)
        ax.set(xlabel="gradient steps", ylabel=f"best L>0 {metric} minus L=0 (paired)",
               title="does transport pay? mean ± s.e. over seeds")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"{metric}_gain_vs_steps.png", dpi=120)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cube-single-play")
    parser.add_argument("--arms", nargs="+", default=["vgf", "bc", "iql"], choices=sorted(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=20000, help="gradient steps per run (multiple of 1000)")
    parser.add_argument("--transitions", type=int, default=None,
                        help="generated dataset size (default: the task config's; OGBench CPU configs 100k)")
    parser.add_argument("--episodes", type=int, default=20, help="paired evaluation episodes per budget")
    parser.add_argument("--evaluations", type=int, default=4, help="evaluation rounds per run (the curve)")
    parser.add_argument("--budgets", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--test-step-sizes", nargs="*", type=float, default=[],
                        help="also evaluate each trained VGF run at these test-time step sizes (no retraining)")
    parser.add_argument("--test-alphas", nargs="*", type=float, default=[],
                        help="also evaluate each trained VGF run at these test-time alphas (no retraining)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for every arm, as vgf-ray train --set (e.g. training.acting_bf16=null)")
    parser.add_argument("--metric", choices=[SUCCESS, RETURN, SCORE], default=SUCCESS,
                        help="what the table and plots report (return shows partial progress where success is 0; "
                             "score: a locomotion task's normalized score)")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: tabulate the finished runs of --arms under --out (every seed there, "
                             "with the test-time evaluations stored beside them)")
    parser.add_argument("--out", default="runs/study")
    args = parser.parse_args()
    if args.steps < 1000 or args.steps % 1000:
        parser.error("--steps must be a positive multiple of 1000")
    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    results_file = out / (RESULTS_JSON if args.metric == SUCCESS else f"study-{args.metric}.json")
    for arm in args.arms:
        seeds = finished_seeds(out, arm) if args.report else args.seeds
        if not seeds:
            print(f"[study] {arm}: no finished run under {out / arm} (seed*/history.json and checkpoint/)", flush=True)
        for seed in seeds:
            exp = arm_experiment(args.task, arm, seed, args.steps, args.transitions, args.episodes,
                                 args.evaluations, args.budgets, out, args.set)
            history = run_arm(exp)
            shown = [0] if is_baseline(arm) else args.budgets
            results.setdefault(arm, {})[str(seed)] = {str(b): c for b, c in curves(history, shown, args.metric).items()}
            results_file.write_text(json.dumps(results, indent=1))
            print(f"[study] {arm} seed {seed}: " + "  ".join(
                f"L={b} {c[-1][1]:.2f}" for b, c in curves(history, shown, args.metric).items() if c), flush=True)
            if is_baseline(arm):
                continue
            variants = [(size, None) for size in args.test_step_sizes] + [(None, a) for a in args.test_alphas]
            if args.report:
                variants = stored_test_settings(Path(exp["output_dir"]))
            for size, alpha in variants:
                name = f"{arm}@{STEP_TAG}{size}" if size is not None else f"{arm}@{ALPHA_TAG}{alpha}"
                results.setdefault(name, {})[str(seed)] = evaluate_with_test_settings(
                    Path(exp["output_dir"]), args.budgets, args.episodes, size, alpha, args.steps, args.metric)
                results_file.write_text(json.dumps(results, indent=1))
                print(f"[study] {name} seed {seed}: " + "  ".join(
                    f"L={b} {c[-1][1]:.2f}" for b, c in results[name][str(seed)].items()), flush=True)
    if not results:
        parser.error(f"--report: none of the arms {args.arms} has a finished run under {out}")
    text = table(results, args.budgets, args.episodes, args.metric)
    (out / ("table.md" if args.metric == SUCCESS else f"table-{args.metric}.md")).write_text(text + "\n")
    plot(results, args.budgets, out, args.metric)
    write_study_record(out, args.task, results, args.budgets, args.metric, args.steps, args.transitions)
    print(text)
    print(f"plots: {', '.join(str(out / f'{args.metric}_{name}.png') for name in PLOTS)}")


if __name__ == "__main__":
    main()
