"""Online collection: env steps/s with 1, 2 and 4 EnvRunners on cube-single, the share of wall time spent
sampling vs learning in an online round (utd_ratio 1), and the acting cost per env step at budgets 0 and 3.

Usage: python benchmarks/online_sampling.py [--steps 2000] [--runners 1 2 4]
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
                train_vgf_steps=1, vgf_lr=0.05, train_q_agg="mean", bf16=True)


def build(dataset_path: str, runners: int, exploration_steps: int = 0, start_training: int = 10**9):
    from vgf_ray.rllib import VGFConfig

    config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
              .training(**CPU_NETS, dataset={"name": "cube-single-play", "path": dataset_path}, offline_steps=0,
                        online_env_steps=10**9, start_training=start_training, rollout_steps_per_iteration=500,
                        exploration_steps=exploration_steps)
              .env_runners(num_env_runners=runners, num_cpus_per_env_runner=0.5, rollout_fragment_length=50)
              .evaluation(evaluation_interval=None))
    return config.build_algo()


def env_steps_per_second(algo, steps: int) -> float:
    algo.train()  # warm-up round
    before = algo.vgf_counters["online_env_steps"]
    start = time.perf_counter()
    while algo.vgf_counters["online_env_steps"] - before < steps:
        algo.train()
    return (algo.vgf_counters["online_env_steps"] - before) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    import ray

    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

    print(f"machine: {common.machine()}")
    path = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                      episode_length=201, progress=False))
    ray.init(num_cpus=max(4, 2 + max(args.runners)), include_dashboard=False, log_to_driver=False)
    print("collection only (no updates), exploration budget L=0:")
    for runners in args.runners:
        algo = build(path, runners)
        try:
            rate = env_steps_per_second(algo, args.steps)
        finally:
            algo.stop()
        print(f"  {runners} EnvRunner(s): {rate:8.1f} env steps/s", flush=True)
    for budget in (0, 3):
        algo = build(path, 1, exploration_steps=budget)
        try:
            rate = env_steps_per_second(algo, args.steps // 2)
        finally:
            algo.stop()
        print(f"acting + env cost per env step at budget {budget}: {1000.0 / rate:6.2f} ms (1 EnvRunner)", flush=True)
    algo = build(path, 2, start_training=0)
    try:
        algo.train()
        timers = {"sample": 0.0, "learn": 0.0}
        for _ in range(3):
            start = time.perf_counter()
            algo._collect_online()
            timers["sample"] += time.perf_counter() - start
            updates = int(algo.vgf_counters["utd_carry"])
            algo.vgf_counters["utd_carry"] -= updates
            start = time.perf_counter()
            algo._run_updates(updates)
            timers["learn"] += time.perf_counter() - start
    finally:
        algo.stop()
    total = sum(timers.values())
    print(f"online round, 2 EnvRunners, utd 1: sampling {timers['sample'] / total:.0%} / learning "
          f"{timers['learn'] / total:.0%} of {total:.1f} s wall time")


if __name__ == "__main__":
    main()
