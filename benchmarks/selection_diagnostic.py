"""Is it the behavior model or the critic's choice? One trained VGF run played under acting rules that separate them.

Every rule plays the same episodes (env reset seed = episode index, particle noise seeded per episode), so the
rows differ only by the rule:

- ``flow-center``: the behavior flow from zero noise, one deterministic action (what BC's Gaussian mean is to BC);
- ``one-sample``: one behavior sample (the behavior model alone, the data's action noise kept);
- ``best-of-N``: VGF at budget 0, the highest-Q of N behavior samples (N = the run's ``num_particles``);
- ``worst-of-N``: the lowest-Q of the same N samples (if it scores like best-of-N, the critic ranks nothing);
- ``best-of-N L=k``: VGF at budget k with the run's step size.

Beside them, on the run's dataset states: how much Q varies among a state's N samples against how much it varies
between states, and how far out (among the N) the highest- and lowest-Q samples lie. A critic nearly flat in the
action whose small variation sits at the outlying samples picks the behavior noise's tails at both ends.

Usage: python benchmarks/selection_diagnostic.py RUN_DIR [RUN_DIR ...] [--episodes 10] [--budgets 1] [--compare]
       [--record NAME]
Several runs: their mean over runs (seeds), or with ``--compare`` side by side (one run's checkpoints along training).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import torch  # noqa: E402
from records import RESULTS, write_record  # noqa: E402
from transport_diagnostics import load_networks  # noqa: E402

from vgf_ray.core.transport import TransportBudget, aggregate_ensemble  # noqa: E402
from vgf_ray.data.mujoco_refs import normalized_score  # noqa: E402
from vgf_ray.data.spec import DatasetSpec, load_transitions  # noqa: E402
from vgf_ray.envs import VGFEnv  # noqa: E402
from vgf_ray.metrics import SCORE_REFERENCE  # noqa: E402
from vgf_ray.seed_stats import mean_se  # noqa: E402

Rule = Callable[[torch.Tensor, torch.Generator], torch.Tensor]  # obs [1, o] -> action [1, d]


def ranked_by_q(nets, obs: torch.Tensor, generator: torch.Generator, steps: int, step_size: float,
                lowest: bool = False) -> torch.Tensor:
    """The highest- (or lowest-) Q of N behavior samples moved ``steps`` steps; Q aggregated as acting does."""
    obs_rep, particles = nets.sample_particles(obs, TransportBudget(steps, step_size), generator)
    with torch.no_grad():
        q = aggregate_ensemble(nets.q_values(obs_rep, particles), nets.hp.train_q_agg)
    idx = q.argmin(-1) if lowest else q.argmax(-1)
    return particles[torch.arange(particles.shape[0]), idx]


def rules(nets, budgets: list[int], step_size: float) -> dict[str, Rule]:
    """The acting rules, in the order the table shows them."""
    def center(obs, generator):
        return nets.behavior.flow(obs, torch.zeros(obs.shape[0], nets.act_dim))

    def one_sample(obs, generator):
        return nets.behavior.sample(obs, 1, generator)[:, 0]

    table = {"flow-center": center, "one-sample": one_sample,
             "best-of-N": lambda o, g: ranked_by_q(nets, o, g, 0, step_size),
             "worst-of-N": lambda o, g: ranked_by_q(nets, o, g, 0, step_size, lowest=True)}
    for steps in budgets:
        table[f"best-of-N L={steps}"] = lambda o, g, s=steps: ranked_by_q(nets, o, g, s, step_size)
    return table


def play(env: VGFEnv, rule: Rule, episodes: int) -> tuple[list[float], list[int]]:
    """Returns and lengths of ``episodes`` paired episodes under ``rule``."""
    returns, lengths = [], []
    for episode in range(episodes):
        generator = torch.Generator().manual_seed(1000 + episode)
        obs, _ = env.reset(seed=episode)
        total, length, done = 0.0, 0, False
        while not done:
            action = rule(torch.as_tensor(obs)[None], generator)
            obs, reward, terminated, truncated, _ = env.step(action[0].numpy())
            total, length, done = total + reward, length + 1, terminated or truncated
        returns.append(total)
        lengths.append(length)
    return returns, lengths


def evaluate(nets, env_config: dict, table: dict[str, Rule], episodes: int) -> dict[str, dict[str, float]]:
    """Per rule: normalized score mean and standard error over episodes, and mean episode length."""
    low, high = env_config[SCORE_REFERENCE]
    env, rows, start = VGFEnv(env_config), {}, time.perf_counter()
    for name, rule in table.items():
        returns, lengths = play(env, rule, episodes)
        scores = np.asarray(normalized_score(np.asarray(returns), low, high))
        mean, stderr = mean_se(scores)
        rows[name] = {"score": mean, "stderr": stderr, "length": float(np.mean(lengths))}
        print(f"{name:>16}: score {rows[name]['score']:6.2f} ± {rows[name]['stderr']:.2f}, mean length "
              f"{rows[name]['length']:.0f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return rows


@torch.no_grad()
def choice_geometry(nets, dataset: dict, states: int = 2048) -> dict[str, float]:
    """Where the critic's choice falls among N behavior samples, on ``states`` dataset states (seeded): the spread
    of Q within a state's samples against its spread across states, and how far out the highest- and lowest-Q
    samples lie (rank of the distance from the samples' mean: 0 the closest, N-1 the farthest; chance (N-1)/2)."""
    rows = np.random.default_rng(0).choice(len(dataset["observations"]), states, replace=False)
    obs = torch.as_tensor(dataset["observations"][rows]).float()
    obs_rep, x = nets.sample_particles(obs, TransportBudget(0, nets.hp.vgf_lr), torch.Generator().manual_seed(0))
    q = aggregate_ensemble(nets.q_values(obs_rep, x), nets.hp.train_q_agg)
    rank = (x - x.mean(-2, keepdim=True)).norm(dim=-1).argsort(-1).argsort(-1).float()
    at = torch.arange(len(obs))
    return {"q_std_within_state": float(q.std(-1).mean()), "q_std_across_states": float(q.mean(-1).std()),
            "distance_rank_best": float(rank[at, q.argmax(-1)].mean()),
            "distance_rank_worst": float(rank[at, q.argmin(-1)].mean()), "distance_rank_chance": (x.shape[1] - 1) / 2}


def geometry_reading(name: str, g: dict[str, float]) -> str:
    """One run's geometry in words."""
    share = 100 * g["q_std_within_state"] / max(g["q_std_across_states"], 1e-9)
    return (f"{name}: Q varies {g['q_std_within_state']:.3f} among a state's samples against "
            f"{g['q_std_across_states']:.2f} between states ({share:.1f}%); the highest- and lowest-Q samples sit at "
            f"distance ranks {g['distance_rank_best']:.2f} and {g['distance_rank_worst']:.2f} from the samples' "
            f"mean (chance {g['distance_rank_chance']:.1f}): both ends of the choice pick outlying samples"
            if min(g["distance_rank_best"], g["distance_rank_worst"]) > g["distance_rank_chance"] + 0.5 else
            f"{name}: Q varies {g['q_std_within_state']:.3f} among a state's samples against "
            f"{g['q_std_across_states']:.2f} between states ({share:.1f}%); best at distance rank "
            f"{g['distance_rank_best']:.2f}, worst at {g['distance_rank_worst']:.2f} (chance "
            f"{g['distance_rank_chance']:.1f})")


def render_geometry(geometry: dict[str, dict[str, float]]) -> str:
    lines = ["| run | Q std within a state | Q std across states | distance rank of best | of worst | chance |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {g['q_std_within_state']:.3f} | {g['q_std_across_states']:.2f} | "
              f"{g['distance_rank_best']:.2f} | {g['distance_rank_worst']:.2f} | {g['distance_rank_chance']:.1f} |"
              for name, g in geometry.items()]
    return "\n".join(lines)


def across_runs(per_run: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per rule: the mean over runs (seeds) and its standard error; a single run keeps its episodes' spread."""
    if len(per_run) == 1:
        return per_run[0]
    out = {}
    for name in per_run[0]:
        mean, stderr = mean_se(rows[name]["score"] for rows in per_run)
        out[name] = {"score": mean, "stderr": stderr,
                     "length": float(np.mean([rows[name]["length"] for rows in per_run]))}
    return out


def render(rows: dict[str, dict[str, float]], runs: int, episodes: int) -> str:
    lines = ["| acting rule | normalized score | mean episode length |", "|---|---|---|"]
    lines += [f"| {name} | {r['score']:.2f} ± {r['stderr']:.2f} | {r['length']:.0f} |" for name, r in rows.items()]
    spread = f"over {runs} runs (seeds), each" if runs > 1 else "over"
    return "\n".join(lines) + f"\n\nmean ± standard error {spread} {episodes} paired episodes"


def reading(rows: dict[str, dict[str, float]]) -> list[str]:
    """The figures' plain reading: what the critic's choice adds to one behavior sample, and the flow's own level."""
    best, one, worst, center = (rows[k]["score"] for k in ("best-of-N", "one-sample", "worst-of-N", "flow-center"))
    verdict = "helps" if best > one else "hurts"
    return [f"the critic's choice {verdict}: best-of-N {best:.2f} against one behavior sample {one:.2f} "
            f"({best - one:+.2f}); the lowest-Q sample scores {worst:.2f}",
            f"the behavior model alone: one sample {one:.2f}, the flow from zero noise {center:.2f}"]


def plot(rows: dict[str, dict[str, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, [rows[n]["score"] for n in names], xerr=[rows[n]["stderr"] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set(xlabel="normalized score", title="behavior model against the critic's choice")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def render_compare(per_run: list[dict[str, dict[str, float]]], labels: list[str], episodes: int) -> str:
    """One column per run (e.g. one run's checkpoints along training), each cell its episodes' mean and spread."""
    lines = ["| acting rule | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name in per_run[0]:
        cells = [f"{rows[name]['score']:.2f} ± {rows[name]['stderr']:.2f}" for rows in per_run]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nnormalized score, mean ± standard error over {episodes} paired episodes"


def plot_compare(per_run: list[dict[str, dict[str, float]]], labels: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in per_run[0]:
        ax.errorbar(labels, [r[name]["score"] for r in per_run], [r[name]["stderr"] for r in per_run], marker="o",
                    capsize=3, label=name)
    ax.set(xlabel="run", ylabel="normalized score", title="behavior model against the critic's choice, per run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def measure(run_dirs: list[Path], episodes: int, budgets: list[int]) -> tuple[list[dict], list[dict], dict, Any]:
    """Every run's rows and choice geometry, the last run's experiment and networks (for the record)."""
    per_run, geometry, datasets = [], [], {}
    for run_dir in run_dirs:
        exp = yaml.safe_load((run_dir / "experiment.yaml").read_text())
        if SCORE_REFERENCE not in exp.get("env", {}):
            raise SystemExit(f"{run_dir}: its env has no {SCORE_REFERENCE} (a locomotion run is needed)")
        nets = load_networks(str(run_dir / "checkpoint"))
        nets.hp.bf16 = False  # fp32 throughout: the rules differ by choice only
        print(f"{run_dir}:", flush=True)
        key = yaml.safe_dump(exp["dataset"])
        if key not in datasets:
            datasets[key] = load_transitions(DatasetSpec.from_dict(exp["dataset"]))[0]
        geometry.append(choice_geometry(nets, datasets[key]))
        per_run.append(evaluate(nets, exp["env"], rules(nets, budgets, nets.hp.vgf_lr), episodes))
    return per_run, geometry, exp, nets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+", help="one or more runs (e.g. a study's seeds)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--budgets", type=int, nargs="*", default=[1], help="budgets > 0 shown beside best-of-N")
    parser.add_argument("--compare", action="store_true",
                        help="show the runs side by side (e.g. checkpoints along training) instead of their mean")
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json and its plot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    per_run, geometry, exp, nets = measure(args.run_dirs, args.episodes, args.budgets)
    labels = [run_dir.name for run_dir in args.run_dirs]
    rows = across_runs(per_run)
    table = (render_compare(per_run, labels, args.episodes) if args.compare
             else render(rows, len(per_run), args.episodes))
    table += "\n\nWhere the choice falls (2048 dataset states):\n\n" + render_geometry(dict(zip(labels, geometry,
                                                                                                   strict=True)))
    print(table)
    if not args.record:
        return
    folder = RESULTS / args.record
    folder.mkdir(parents=True, exist_ok=True)
    if args.compare:
        plot_compare(per_run, labels, folder / "selection.png")
        notes = [f"{label}: {reading(r)[0]}" for label, r in zip(labels, per_run, strict=True)]
    else:
        plot(rows, folder / "selection.png")
        notes = reading(rows)
    notes += [geometry_reading(label, g) for label, g in zip(labels, geometry, strict=True)]
    write_record(folder, name=args.record, kind="study",
                 title=f"{exp['dataset']['name']}: the behavior model against the critic's choice (VGF runs)",
                 figures={"rows": rows, "per_run": dict(zip(labels, per_run, strict=True)),
                          "choice_geometry": dict(zip(labels, geometry, strict=True)),
                          "episodes": args.episodes, "num_particles": nets.hp.num_particles,
                          "step_size": nets.hp.vgf_lr},
                 table=table, plots=["selection.png"], notes=notes)


if __name__ == "__main__":
    print(f"machine: {common.machine()}")
    main()
