"""Online collection and evaluation end to end, per acting path (``training.acting``) in the same run:
env steps/s collected with 1 and 2 EnvRunners at exploration budgets 0 and 3, the wall time of a 4-budget,
10-episode evaluation round on cube-single, and (``--round``) the share of wall time spent sampling vs learning in
an online round (utd_ratio 1). The first path listed is the baseline of the ratios.

Usage: python benchmarks/online_sampling.py [--steps 2000] [--runners 1 2] [--acting eager fused compiled] [--round]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CPU_NETS = dict(hidden_dims=(256, 256), actor_hidden_dims=(256, 256), num_particles=8, bc_flow_steps=5,
                train_vgf_steps=1, vgf_lr=0.05, train_q_agg="mean", bf16=True, acting_bf16=False)


def build(dataset_path: str, runners: int, exploration_steps: int = 0, start_training: int = 10**9,
          acting: str = "fused", envs_per_runner: int = 1, vectorize_mode: str = "sync"):
    from vgf_ray.rllib import VGFConfig

    config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
              .training(**CPU_NETS, dataset={"name": "cube-single-play", "path": dataset_path}, offline_steps=0,
                        online_env_steps=10**9, start_training=start_training, rollout_steps_per_iteration=500,
                        exploration_steps=exploration_steps, acting=acting)
              .env_runners(num_env_runners=runners, num_cpus_per_env_runner=0.5, rollout_fragment_length=50,
                           num_envs_per_env_runner=envs_per_runner, gym_env_vectorize_mode=vectorize_mode)
              .evaluation(evaluation_interval=None))
    return config.build_algo()


def env_steps_per_second(algo, steps: int) -> float:
    algo.train()  # warm-up round
    before = algo.vgf_counters.online_env_steps
    start = time.perf_counter()
    while algo.vgf_counters.online_env_steps - before < steps:
        algo.train()
    return (algo.vgf_counters.online_env_steps - before) / (time.perf_counter() - start)


def evaluation_round_seconds(algo, episodes: int) -> float:
    """Wall time of one evaluation round: ``episodes`` episodes at each of the budgets 0..3, after a one-episode
    round that compiles each budget's graph (``compiled`` acting compiles once per EnvRunner and budget, then
    every later round of a run is this steady state)."""
    from vgf_ray.rllib.evaluation import run_budget_evaluation

    run_budget_evaluation(algo.env_runner_group, [0, 1, 2, 3], 1, CPU_NETS.get("vgf_lr", 0.05))
    start = time.perf_counter()
    run_budget_evaluation(algo.env_runner_group, [0, 1, 2, 3], episodes, CPU_NETS.get("vgf_lr", 0.05))
    return time.perf_counter() - start


def measure(path: str, acting: str, runners: list[int], steps: int, episodes: int) -> dict[str, float]:
    figures = {}
    for count in runners:
        for budget in (0, 3):
            algo = build(path, count, exploration_steps=budget, acting=acting)
            try:
                figures[f"env steps/s, {count} EnvRunner(s), L={budget}"] = env_steps_per_second(algo, steps)
                if count == max(runners) and budget == 0:
                    figures[f"evaluation round s ({episodes} episodes x 4 budgets, {count} EnvRunners)"] = \
                        evaluation_round_seconds(algo, episodes)
            finally:
                algo.stop()
            print(f"  [{acting}] {count} EnvRunner(s), L={budget}: done", flush=True)
    return figures


def online_round_shares(path: str, acting: str) -> None:
    algo = build(path, 2, start_training=0, acting=acting)
    try:
        algo.train()
        timers = {"sample": 0.0, "learn": 0.0}
        for _ in range(3):
            start = time.perf_counter()
            algo._collect_online()
            timers["sample"] += time.perf_counter() - start
            updates = int(algo.vgf_counters.utd_carry)
            algo.vgf_counters.utd_carry -= updates
            start = time.perf_counter()
            algo._run_updates(updates)
            timers["learn"] += time.perf_counter() - start
    finally:
        algo.stop()
    total = sum(timers.values())
    print(f"online round [{acting}], 2 EnvRunners, utd 1: sampling {timers['sample'] / total:.0%} / learning "
          f"{timers['learn'] / total:.0%} of {total:.1f} s wall time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--acting", nargs="+", default=["eager", "fused"], choices=["eager", "fused", "compiled"])
    parser.add_argument("--episodes", type=int, default=10, help="episodes per budget in the evaluation round")
    parser.add_argument("--round", action="store_true", help="also the sampling/learning split of an online round")
    args = parser.parse_args()
    import ray

    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

    print(f"machine: {common.machine()}")
    path = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                      episode_length=201, progress=False))
    ray.init(num_cpus=max(4, 2 + max(args.runners)), include_dashboard=False, log_to_driver=False)
    results = {acting: measure(path, acting, args.runners, args.steps, args.episodes) for acting in args.acting}
    baseline = args.acting[0]
    print(f"\n| figure | {' | '.join(args.acting)} | {' | '.join(f'{a} vs {baseline}' for a in args.acting[1:])} |")
    print("|---|" + "---|" * (2 * len(args.acting) - 1))
    for key, base in results[baseline].items():
        values = [results[a][key] for a in args.acting]
        # Rates: higher is better; seconds: lower is better. Ratios are "times faster".
        ratios = [v / base if "steps/s" in key else base / v for v in values[1:]]
        print(f"| {key} | " + " | ".join(f"{v:.1f}" for v in values) + " | "
              + " | ".join(f"{r:.2f}x" for r in ratios) + " |", flush=True)
    if args.round:
        online_round_shares(path, args.acting[-1])


if __name__ == "__main__":
    main()
