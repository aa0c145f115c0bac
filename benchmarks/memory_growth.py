"""Memory over a long online run: RSS of the driver (which holds the learner and its replay) and of every
EnvRunner, sampled every ``--every`` env steps, with online FIFO eviction (``--capacity`` smaller than the run).

CPU-scale nets on cube-single, 2 EnvRunners, one gradient step per ``1 / --utd`` env steps (learning keeps the
learner's allocations realistic without making a 50k-step run take an hour). Prints a table and the growth from
the first sample after the buffer filled to the end, and saves the curve as a plot.

Usage: python benchmarks/memory_growth.py [--steps 50000] [--every 5000] [--capacity 10000] [--utd 0.1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CPU_NETS = dict(hidden_dims=(256, 256), actor_hidden_dims=(256, 256), num_particles=8, bc_flow_steps=5,
                train_vgf_steps=1, vgf_lr=0.05, train_q_agg="mean", bf16=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--utd", type=float, default=0.1)
    parser.add_argument("--out", default="memory_growth.png")
    args = parser.parse_args()
    import ray

    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset
    from vgf_ray.rllib import VGFConfig

    print(f"machine: {common.machine()}")
    path = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                      episode_length=201, progress=False))
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
              .training(**CPU_NETS, dataset={"name": "cube-single-play", "path": path}, offline_steps=0,
                        online_env_steps=args.steps, start_training=1000, utd_ratio=args.utd,
                        rollout_steps_per_iteration=1000, online_buffer_capacity=args.capacity)
              .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5)
              .evaluation(evaluation_interval=None))
    algo = config.build_algo()
    runner_pids = algo.env_runner_group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
    rows = []
    start = time.perf_counter()
    try:
        next_sample = 0
        while True:
            steps = algo.vgf_counters.online_env_steps
            if steps >= next_sample:
                row = (steps, rss_mb(os.getpid()), *[rss_mb(pid) for pid in runner_pids])
                rows.append(row)
                print(f"{steps:>7} env steps: driver {row[1]:7.1f} MB, EnvRunners "
                      + " / ".join(f"{r:6.1f}" for r in row[2:]) + f" MB ({time.perf_counter() - start:.0f} s)",
                      flush=True)
                next_sample += args.every
            if steps >= args.steps:
                break
            algo.train()
    finally:
        algo.stop()
    filled = next(i for i, r in enumerate(rows) if r[0] >= args.capacity)
    first, last = rows[filled], rows[-1]
    print(f"\ngrowth from {first[0]} to {last[0]} env steps (buffer full, FIFO evicting): driver "
          f"{last[1] - first[1]:+.1f} MB ({(last[1] - first[1]) / first[1]:+.1%}), EnvRunners "
          + " / ".join(f"{b - a:+.1f} MB" for a, b in zip(first[2:], last[2:])))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o", label="driver (learner + replay)")
    for i in range(len(runner_pids)):
        ax.plot([r[0] for r in rows], [r[2 + i] for r in rows], marker=".", label=f"EnvRunner {i + 1}")
    ax.axvline(args.capacity, color="grey", linestyle=":", label="online buffer full")
    ax.set_xlabel("online env steps")
    ax.set_ylabel("RSS (MB)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
