"""One evaluation round at the main job's settings, batched against sequential, in the same run.

The main job's evaluation (tune_configs/quickstart.yaml: cube-single-play, budgets 0..3, 20 paired episodes each)
on the local EnvRunner: the batched round (every (episode, budget) row at once, one module call per env step)
against the sequential one (RLlib's ``sample()``, one budget after another, one observation per module call).
Each path gets a one-episode warm-up round first (compiled acting pays its compile once per process). Prints env
steps/s of each path, their ratio, and where the batched round's time goes (acting, env steps, resets, the rest);
``--record NAME`` writes benchmarks/results/NAME/record.json.
Usage: python benchmarks/evaluation_throughput.py [--episodes 20] [--repeats 2] [--record evaluation-throughput]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from records import RESULTS, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = [0, 1, 2, 3]


def build_algo():
    """The main job's VGF (its config and generated dataset), untrained: acting costs do not depend on training."""
    from vgf_ray.experiment.build import build_config
    from vgf_ray.experiment.schema import load_experiment

    exp = load_experiment(ROOT / "tune_configs" / "quickstart.yaml", ["evaluation.interval=1000"])
    return build_config(exp).build_algo()


def batched(group, episodes: int, step_size: float) -> tuple[int, float, dict]:
    """(env steps, seconds, time split) of one batched round."""
    from vgf_ray.rllib.batched_evaluation import plan_rows, play_rows

    runner = group.local_env_runner
    timings: dict[str, float] = {}
    start = time.perf_counter()
    results = play_rows(runner, plan_rows(episodes, BUDGETS, 0), step_size, timings=timings)
    return sum(r.length for r in results), time.perf_counter() - start, timings


def sequential(group, episodes: int, step_size: float) -> tuple[int, float]:
    """(env steps, seconds) of one round through RLlib's ``sample()``, budget after budget."""
    from vgf_ray.metrics import EPISODE_LEN, EPISODES, budget_key
    from vgf_ray.rllib.evaluation import run_budget_evaluation_sequential

    start = time.perf_counter()
    results, _ = run_budget_evaluation_sequential(group, BUDGETS, episodes, step_size)
    steps = sum(results[budget_key(b)][EPISODE_LEN] * results[budget_key(b)][EPISODES] for b in BUDGETS)
    return round(steps), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20, help="paired episodes per budget")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per path (the median is reported)")
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    import ray

    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    print(common.machine(), flush=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    algo = build_algo()
    group, step_size = algo.env_runner_group, algo.config.vgf_lr
    batched(group, 1, step_size)  # warm-up rounds: envs made, graphs compiled
    sequential(group, 1, step_size)
    new, old, splits = [], [], []
    for _ in range(args.repeats):  # the paths take turns, so a drift of the machine shows in both
        steps, seconds, timings = batched(group, args.episodes, step_size)
        new.append(steps / seconds)
        splits.append({**timings, "total_s": seconds})
        steps, seconds = sequential(group, args.episodes, step_size)
        old.append(steps / seconds)
    rates = {"batched": statistics.median(new), "sequential": statistics.median(old)}
    split = splits[len(splits) // 2]
    split["other_s"] = split["total_s"] - split["acting_s"] - split["env_step_s"] - split["reset_s"]
    ratio = rates["batched"] / rates["sequential"]
    for name, value in rates.items():
        print(f"{name:>10}: {value:7.1f} env steps/s", flush=True)
    print(f"batched / sequential: {ratio:.2f}x", flush=True)
    print("batched round: " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()), flush=True)
    if args.record:
        table = "\n".join(["| path | env steps/s |", "|---|---|",
                           *(f"| {name} | {value:.1f} |" for name, value in rates.items()), f"| ratio | {ratio:.2f}x |",
                           "", "| batched round | seconds |", "|---|---|",
                           *(f"| {k[:-2]} | {v:.1f} |" for k, v in split.items())])
        write_record(RESULTS / args.record, name=args.record, kind="benchmark",
                     title=f"Evaluation round ({args.episodes} paired episodes x budgets {BUDGETS}, cube-single-play, "
                           "CPU config): batched against sequential",
                     figures={"env_steps_per_s": rates, "ratio": ratio, "batched_round_split_s": split},
                     table=table)
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
