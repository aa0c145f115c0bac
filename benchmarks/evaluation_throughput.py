"""One evaluation round at the main job's settings, batched against sequential, in the same run.

The main job's evaluation (tune_configs/quickstart.yaml: cube-single-play, budgets 0..3, 20 paired episodes each),
for each ``--eval-runners`` count (0: the local EnvRunner; n > 0: n remote evaluation EnvRunners, episodes split
between them): the batched round (every (episode, budget) row at once, one module call per env step) against the
sequential one (RLlib's ``sample()``, one budget after another, one observation per module call), at the default
rows per runner (``DEFAULT_PARALLEL_ROWS``). Each path first
plays one full round (compiled acting pays its compiles once per process; a run's later rounds are this steady
state), then the paths take turns for ``--repeats`` rounds. Prints env steps/s of each (runners, path), each ratio
to the first count's sequential round (the main job's evaluation before batching), and where the local batched
round's time goes (acting, env steps, resets, the rest); ``--record NAME`` writes benchmarks/results/NAME/record.json.
Usage: python benchmarks/evaluation_throughput.py [--episodes 20] [--repeats 2] [--eval-runners 0 2]
                                                  [--record evaluation-throughput]
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


def build_algo(eval_runners: int):
    """The main job's VGF (its config and generated dataset), untrained: acting costs do not depend on training."""
    from vgf_ray.experiment.build import build_config
    from vgf_ray.experiment.schema import load_experiment

    exp = load_experiment(ROOT / "tune_configs" / "quickstart.yaml",
                          ["evaluation.interval=1000", f"evaluation.num_env_runners={eval_runners}",
                           "resources.num_env_runners=0"])
    return build_config(exp).build_algo()


def batched(group, episodes: int, step_size: float) -> tuple[int, float, dict]:
    """(env steps, seconds, time split of the local runner's round: empty with remote runners) of one batched
    round."""
    from vgf_ray.rllib.batched_evaluation import DEFAULT_PARALLEL_ROWS, plan_rows, play_round, play_rows

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if group.num_remote_env_runners():
        results = play_round(group, BUDGETS, episodes, step_size, 0)
    else:
        results = play_rows(group.local_env_runner, plan_rows(episodes, BUDGETS, 0), step_size, DEFAULT_PARALLEL_ROWS,
                            timings=timings)
    return sum(r.length for r in results), time.perf_counter() - start, timings


def sequential(group, episodes: int, step_size: float) -> tuple[int, float]:
    """(env steps, seconds) of one round through RLlib's ``sample()``, budget after budget."""
    from vgf_ray.rllib.evaluation import run_budget_evaluation_sequential

    start = time.perf_counter()
    evaluation = run_budget_evaluation_sequential(group, BUDGETS, episodes, step_size)
    return evaluation.env_steps, time.perf_counter() - start


def measure(eval_runners: int, episodes: int, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median env steps/s of the batched and the sequential round on ``eval_runners`` evaluation runners, and the
    middle batched round's time split."""
    algo = build_algo(eval_runners)
    group, step_size = algo.eval_env_runner_group, algo.config.vgf_lr
    try:
        batched(group, episodes, step_size)  # warm-up rounds: envs made, graphs compiled
        sequential(group, episodes, step_size)
        new, old, splits = [], [], []
        for _ in range(repeats):  # the paths take turns, so a drift of the machine shows in both
            steps, seconds, timings = batched(group, episodes, step_size)
            new.append(steps / seconds)
            splits.append({**timings, "total_s": seconds})
            steps, seconds = sequential(group, episodes, step_size)
            old.append(steps / seconds)
    finally:
        algo.stop()
    rates = {"batched": statistics.median(new), "sequential": statistics.median(old)}
    print(f"  {eval_runners} evaluation runner(s): " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items())
          + " env steps/s", flush=True)
    return rates, splits[len(splits) // 2]


def render(rates: dict[str, dict[str, float]], baseline: str, split: dict[str, float]) -> str:
    """Markdown: env steps/s per (runners, path) with the ratio to the baseline, then the local round's split."""
    base = rates[baseline]["sequential"]
    lines = ["| evaluation runners | path | env steps/s | vs sequential, " + baseline + " |", "|---|---|---|---|"]
    for runners, by_path in rates.items():
        lines += [f"| {runners} | {path} | {value:.1f} | {value / base:.2f}x |" for path, value in by_path.items()]
    if split:
        lines += ["", "| batched round, local runner | seconds |", "|---|---|",
                  *(f"| {k[:-2]} | {v:.1f} |" for k, v in split.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20, help="paired episodes per budget")
    parser.add_argument("--repeats", type=int, default=2, help="rounds per path (the median is reported)")
    parser.add_argument("--eval-runners", type=int, nargs="+", default=[0, 2],
                        help="evaluation EnvRunner counts (0: the local runner); the first is the baseline")
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    import ray

    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    print(common.machine(), flush=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    rates, split = {}, {}
    for count in args.eval_runners:
        label = "local" if count == 0 else f"{count} remote"
        rates[label], round_split = measure(count, args.episodes, args.repeats)
        if count == 0:
            split = {**round_split}
            split["other_s"] = split["total_s"] - split["acting_s"] - split["env_step_s"] - split["reset_s"]
    ray.shutdown()
    baseline = next(iter(rates))
    table = render(rates, baseline, split)
    print(table, flush=True)
    if args.record:
        best = max(value for by_path in rates.values() for value in by_path.values())
        write_record(RESULTS / args.record, name=args.record, kind="benchmark",
                     title=f"Evaluation round ({args.episodes} paired episodes x budgets {BUDGETS}, cube-single-play, "
                           "CPU config): batched against sequential, local and remote evaluation runners",
                     figures={"env_steps_per_s": rates, "best_ratio": best / rates[baseline]["sequential"],
                              "baseline": f"sequential, {baseline}", "batched_round_split_s": split},
                     table=table)


if __name__ == "__main__":
    main()
