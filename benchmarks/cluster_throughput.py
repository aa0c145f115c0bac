"""Online phase on one Ray node vs two (Ray's ``ray.cluster_utils.Cluster`` on 127.0.0.1), synchronous vs
``async_sampling``, 2 EnvRunners, in the same run: env steps/s and gradient steps/s, policy lag, and the weight
sync per iteration (wall time, MB put in the object store) plus the transitions shipped to the learner.

Both "nodes" share this machine's cores, so two nodes cannot be faster here: the figures show what crossing
nodes costs (object-store transfers, a second raylet) and what overlapping sampling with learning gains. One
node's figures are the baseline of the ratios. cube-single, CPU-scale nets, one gradient step per env step.

Usage: python benchmarks/cluster_throughput.py [--iterations 6] [--rollout 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROLLOUT = "rollout_node"
CPU_NETS = dict(hidden_dims=(256, 256), actor_hidden_dims=(256, 256), num_particles=8, bc_flow_steps=5,
                train_vgf_steps=1, vgf_lr=0.05, train_q_agg="mean", bf16=True)
TRANSITION_BYTES = 4 * (2 * common.CUBE_OBS + common.CUBE_ACT + 2)  # obs, next obs, action, reward, mask (fp32)


def run(dataset: str, nodes: int, async_sampling: bool, iterations: int, rollout: int) -> dict[str, float]:
    import ray

    from vgf_ray.local_cluster import start_local_cluster
    from vgf_ray.metrics import (
        GRAD_STEPS_LIFETIME,
        ONLINE_ENV_STEPS_LIFETIME,
        POLICY_LAG,
        WEIGHT_SYNC_MB,
        WEIGHT_SYNC_S,
    )
    from vgf_ray.rllib import VGFConfig

    temp = tempfile.mkdtemp(prefix="vgfbench")
    head = {"num_cpus": 4 if nodes == 1 else 2, "include_dashboard": False, "object_store_memory": 1 << 29,
            "temp_dir": temp}
    if nodes == 1:
        head["resources"] = {ROLLOUT: 2}
    cluster = start_local_cluster(head)
    if nodes == 2:
        cluster.add_node(num_cpus=2, resources={ROLLOUT: 2}, object_store_memory=1 << 29)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
                  .training(**CPU_NETS, dataset={"name": "cube-single-play", "path": dataset}, offline_steps=0,
                            online_env_steps=10**9, start_training=0, utd_ratio=1.0,
                            rollout_steps_per_iteration=rollout, async_sampling=async_sampling)
                  .env_runners(num_env_runners=2, num_cpus_per_env_runner=0.5,
                               custom_resources_per_env_runner={ROLLOUT: 1})
                  .evaluation(evaluation_interval=None))
        algo = config.build_algo()
        try:
            algo.train()  # warm-up: the first (synchronous) round
            first = algo.train()
            start = time.perf_counter()
            results = [algo.train() for _ in range(iterations)]
            wall = time.perf_counter() - start
        finally:
            algo.stop()
    finally:
        ray.shutdown()
        cluster.shutdown()
    last = results[-1]
    env_steps = last[ONLINE_ENV_STEPS_LIFETIME] - first[ONLINE_ENV_STEPS_LIFETIME]
    grad_steps = last[GRAD_STEPS_LIFETIME] - first[GRAD_STEPS_LIFETIME]
    return {"env steps/s": env_steps / wall, "grad steps/s": grad_steps / wall,
            "policy lag": statistics.mean(r[POLICY_LAG] for r in results),
            "weight sync ms": 1000 * statistics.median(r[WEIGHT_SYNC_S] for r in results),
            "weight sync MB x runners": 2 * last[WEIGHT_SYNC_MB],
            "transitions MB/iteration": env_steps / iterations * TRANSITION_BYTES / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--rollout", type=int, default=500, help="env steps per round (and gradient steps)")
    args = parser.parse_args()
    if args.iterations < 1 or args.rollout < 2:
        parser.error("--iterations must be >= 1 and --rollout >= 2")
    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

    print(f"machine: {common.machine()}")
    dataset = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                         episode_length=201, progress=False))
    rows = {}
    for nodes in (1, 2):
        for async_sampling in (False, True):
            name = f"{nodes} node{'s' if nodes > 1 else ''}, {'async' if async_sampling else 'sync'}"
            rows[name] = run(dataset, nodes, async_sampling, args.iterations, args.rollout)
            print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[name].items()), flush=True)
    base = rows["1 node, sync"]
    keys = list(base)
    print("\n| run | " + " | ".join(keys) + " | env steps/s vs 1 node sync |")
    print("|---|" + "---|" * (len(keys) + 1))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.2f}" for k in keys)
              + f" | {row['env steps/s'] / base['env steps/s']:.2f} |")


if __name__ == "__main__":
    main()
