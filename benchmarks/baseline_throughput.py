"""Updates/s of the BC, IQL and CQL baselines' learners, with each critic architecture (``q_network``).

Each (algorithm, q_network) learner is built as the learning study builds it (the task's CPU config, the baselines
at 2x256, the in-memory replay of the generated dataset) and runs RLlib's own update on minibatches of 256. The
learners take turns within every repeat, so a drift of the machine's speed shows in all of them and not in their
ratios. Prints updates/s (median of ``--repeats``, with the min-max spread) and, per algorithm, the ratio of
``q_network: mlp`` (the default: MLP([s, a]) as the IQL/CQL/FQL authors build it) over ``multi_stream`` (RLlib's
SAC catalog: an MLP per input and tanh fusion layers).
Usage: python benchmarks/baseline_throughput.py [--algorithms bc iql cql] [--updates 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from learning_study import arm_experiment  # noqa: E402

from vgf_ray.baselines.q_network import Q_NETWORK_CATALOGS  # noqa: E402
from vgf_ray.experiment.baselines import RECOMMENDED  # noqa: E402


def build_learner(task: str, algorithm: str, q_network: str | None, transitions: int, width: list[int]):
    """An RLlib algorithm of the baseline (0 remote learners) and its local learner, holding the dataset."""
    from vgf_ray.experiment.build import build_config

    exp = arm_experiment(task, algorithm, 0, 1000, transitions, 1, 1, [0], Path("runs/baseline-throughput"))
    settings = exp["training"][algorithm]
    settings["model"] = {**settings.get("model", {}), "fcnet_hiddens": width}
    if q_network is not None:
        settings["q_network"] = q_network
    algo = build_config(exp).build_algo()
    algo._send_dataset_to_learners()
    return algo, algo.learner_group._learner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cube-single-play")
    parser.add_argument("--algorithms", nargs="+", default=["bc", "iql", "cql"], choices=sorted(RECOMMENDED))
    parser.add_argument("--width", nargs="+", type=int, default=[256, 256], help="fcnet_hiddens")
    parser.add_argument("--transitions", type=int, default=100000)
    parser.add_argument("--updates", type=int, default=30, help="updates per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    print(common.machine(), flush=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    learners = {}
    for algorithm in args.algorithms:
        for q_network in Q_NETWORK_CATALOGS if "q_network" in RECOMMENDED[algorithm] else (None,):
            algo, learner = build_learner(args.task, algorithm, q_network, args.transitions, args.width)
            learner.run_baseline_updates(3, 0)  # warm-up
            learners[(algorithm, q_network)] = (algo, learner)
    rates: dict[tuple, list[float]] = {key: [] for key in learners}
    for repeat in range(args.repeats):
        for key, (_, learner) in learners.items():
            start = time.perf_counter()
            learner.run_baseline_updates(args.updates, 3 + repeat * args.updates)
            rates[key].append(args.updates / (time.perf_counter() - start))
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    print(f"\n{args.task} dims, batch 256, fcnet_hiddens {args.width}: updates/s, median (min-max) of {args.repeats}")
    medians = {key: statistics.median(values) for key, values in rates.items()}
    for (algorithm, q_network), values in rates.items():
        label = f"{algorithm} q_network={q_network}" if q_network else algorithm
        print(f"  {label:28s} {medians[(algorithm, q_network)]:8.2f} ({min(values):.2f}-{max(values):.2f})")
    for algorithm in args.algorithms:
        if (algorithm, "mlp") in medians:
            ratio = medians[(algorithm, "mlp")] / medians[(algorithm, "multi_stream")]
            print(f"  {algorithm}: mlp / multi_stream = {ratio:.2f}x")
    for algo, _ in learners.values():
        algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
