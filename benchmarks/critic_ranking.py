"""Does the critic rank a state's candidate actions as their true returns do? Monte Carlo ground truth for trained
locomotion runs.

Along ``--episodes`` episodes of the behavior model (one sample per step), every ``--every`` steps the MuJoCo state
is saved and these candidate actions are each executed from it, then followed by the behavior model for
``--horizon`` steps, ``--repeats`` times (one batched behavior call per step for all rollouts):

- the N behavior samples acting ranks at budget 0 (N = the run's ``num_particles``);
- the particle acting executes at each budget L in ``--budgets`` (the same N samples moved L steps at the run's
  step size, then the highest Q).

A candidate's true value is its mean discounted return (the run's discount, the env's reward, truncated at the
horizon: the value of the action under the behavior policy, which is what separates candidates of one state).
Per state: the rank correlation of Q with it among the N samples, and the true gain over the samples' mean of the
highest-Q sample (best-of-N's pick), the lowest-Q one, the truly best one (the most any ranking could gain) and the
particle of each budget. Mean and standard error over states, every run's states pooled.

Usage: python benchmarks/critic_ranking.py RUN_DIR [RUN_DIR ...] [--episodes 3] [--every 50] [--record NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import torch  # noqa: E402
from records import RESULTS, write_record  # noqa: E402
from transport_diagnostics import load_networks  # noqa: E402

from vgf_ray.core.transport import TransportBudget, aggregate_ensemble  # noqa: E402
from vgf_ray.envs import VGFEnv  # noqa: E402
from vgf_ray.seed_stats import mean_se  # noqa: E402

PICKS = ("best-of-N", "worst-of-N", "truly best")  # among the N samples: by highest Q, lowest Q, true value


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's correlation (continuous values: no ties to resolve)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def saved_state(env: VGFEnv) -> tuple[np.ndarray, np.ndarray]:
    return env.unwrapped.data.qpos.copy(), env.unwrapped.data.qvel.copy()


@torch.no_grad()
def candidates(nets, obs: np.ndarray, budgets: list[int], generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``[N + len(budgets), d]`` actions (the N samples, then each budget's executed particle) and the N samples'
    Q (aggregated as acting selects)."""
    obs_t = torch.as_tensor(obs)[None]
    obs_rep, samples = nets.sample_particles(obs_t, TransportBudget(0, nets.hp.vgf_lr), generator)
    q = aggregate_ensemble(nets.q_values(obs_rep, samples), nets.hp.train_q_agg)[0]
    chosen = []
    for steps in budgets:
        moved = nets.transport(obs_rep, samples, TransportBudget(steps, nets.hp.vgf_lr))
        q_moved = aggregate_ensemble(nets.q_values(obs_rep, moved), nets.hp.train_q_agg)[0]
        chosen.append(moved[0, q_moved.argmax()])
    return torch.cat([samples[0], torch.stack(chosen)]).numpy(), q.numpy()


@torch.no_grad()
def true_values(nets, envs: list[VGFEnv], state, actions: np.ndarray, repeats: int, horizon: int, discount: float,
                generator: torch.Generator) -> np.ndarray:
    """Discounted return of each first action followed by the behavior model: ``[C, repeats]``."""
    rows = len(actions) * repeats
    obs = np.zeros((rows, envs[0].observation_space.shape[0]), np.float32)
    for env in envs[:rows]:
        env.reset(seed=0)  # the time limit's counter starts again; the state is then replaced
        env.unwrapped.set_state(*state)
    step_actions = np.repeat(actions, repeats, axis=0)
    returns, alive, weight = np.zeros(rows), np.ones(rows, bool), 1.0
    for _ in range(horizon):
        for i in np.flatnonzero(alive):
            obs[i], reward, terminated, truncated, _ = envs[i].step(step_actions[i])
            returns[i] += weight * reward
            alive[i] = not (terminated or truncated)
        weight *= discount
        if not alive.any():
            break
        step_actions = nets.behavior.sample(torch.as_tensor(obs), 1, generator)[:, 0].numpy()
    return returns.reshape(len(actions), repeats)


def state_row(q: np.ndarray, returns: np.ndarray, budgets: list[int]) -> dict[str, float]:
    """One state's readings: rank correlations and true gains over the N samples' mean. The truly best sample is
    picked on one half of the rollouts and valued on the other (picked and valued on the same noisy means, it
    would gain by the noise alone); the halves' own rank correlation is the truth's reliability."""
    n, half = len(q), returns.shape[1] // 2
    value, first, second = returns.mean(1), returns[:n, :half].mean(1), returns[:n, half:].mean(1)
    base = value[:n].mean()
    row = {"rank correlation": rank_correlation(q, value[:n]),
           "truth's split-half rank correlation": rank_correlation(first, second),
           "best-of-N": value[q.argmax()] - base, "worst-of-N": value[q.argmin()] - base,
           "truly best": second[first.argmax()] - second.mean()}
    row.update({f"L={b}": value[n + i] - base for i, b in enumerate(budgets)})
    return row


def measure_run(run_dir: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    exp = yaml.safe_load((run_dir / "experiment.yaml").read_text())
    nets = load_networks(str(run_dir / "checkpoint"))
    nets.hp.bf16 = False
    rollouts = (nets.hp.num_particles + len(args.budgets)) * args.repeats
    env, envs = VGFEnv(exp["env"]), [VGFEnv(exp["env"]) for _ in range(rollouts)]
    rows, start = [], time.perf_counter()
    for episode in range(args.episodes):
        generator = torch.Generator().manual_seed(1000 + episode)
        obs, _ = env.reset(seed=episode)
        for t in range(10**6):
            if t % args.every == 0:
                actions, q = candidates(nets, obs, args.budgets, generator)
                value = true_values(nets, envs, saved_state(env), actions, args.repeats, args.horizon,
                                    nets.hp.discount, generator)
                rows.append(state_row(q, value, args.budgets))
                print(f"{run_dir.name} episode {episode} t={t}: rank corr {rows[-1]['rank correlation']:+.2f}, "
                      f"best-of-N {rows[-1]['best-of-N']:+.2f}, truly best {rows[-1]['truly best']:+.2f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            action = nets.behavior.sample(torch.as_tensor(obs)[None], 1, generator)[0, 0].numpy()
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    return rows


def summarize(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    return {key: mean_se([row[key] for row in rows]) for key in rows[0]}


def render(summary: dict[str, tuple[float, float]], states: int, args: argparse.Namespace) -> str:
    lines = ["| reading | mean ± se over states |", "|---|---|"]
    lines += [f"| {key} | {m:+.3f} ± {se:.3f} |" for key, (m, se) in summary.items()]
    return "\n".join(lines) + (f"\n\n{states} states; gains are true discounted returns (env reward, horizon "
                               f"{args.horizon}, {args.repeats} rollouts per action) over the mean of the state's "
                               "N behavior samples")


def reading(summary: dict[str, tuple[float, float]]) -> str:
    corr, truth = summary["rank correlation"][0], summary["truth's split-half rank correlation"][0]
    best, oracle = summary["best-of-N"][0], summary["truly best"][0]
    return (f"among a state's N behavior samples the critic's Q ranks them with rank correlation {corr:+.2f} to their "
            f"true values (the truth agrees with itself at {truth:+.2f}); its pick gains {best:+.2f} in true return "
            f"over the samples' mean where a ranking by true value gains {oracle:+.2f}")


def plot(summary: dict[str, tuple[float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in summary if "correlation" not in k]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(keys, [summary[k][0] for k in keys], yerr=[summary[k][1] for k in keys], capsize=3)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("true return gain over the samples' mean")
    ax.set_title(f"critic's choice against Monte Carlo truth (rank corr {summary['rank correlation'][0]:+.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--every", type=int, default=50, help="steps between measured states")
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=4, help="rollouts per candidate action (even: two halves)")
    parser.add_argument("--budgets", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json and its plot")
    args = parser.parse_args()
    if args.repeats < 2 or args.repeats % 2:
        parser.error(f"--repeats must be an even number >= 2 (two halves of rollouts), got {args.repeats}")
    torch.set_num_threads(1)
    rows = [row for run_dir in args.run_dirs for row in measure_run(run_dir, args)]
    summary = summarize(rows)
    table = render(summary, len(rows), args)
    print(table + "\n" + reading(summary))
    if args.record:
        folder = RESULTS / args.record
        folder.mkdir(parents=True, exist_ok=True)
        plot(summary, folder / "ranking.png")
        dataset = yaml.safe_load((args.run_dirs[0] / "experiment.yaml").read_text())["dataset"]["name"]
        write_record(folder, name=args.record, kind="study", table=table, plots=["ranking.png"],
                     title=f"{dataset}: the critic's ranking of a state's actions against Monte Carlo returns",
                     figures={"summary": summary, "states": rows, "runs": [str(d) for d in args.run_dirs]},
                     notes=[reading(summary)])


if __name__ == "__main__":
    print(f"machine: {common.machine()}")
    main()
