"""Online collection with vectorized envs: env steps/s of one EnvRunner holding 1 env against the same
EnvRunner holding ``--envs`` envs (RLlib's ``num_envs_per_env_runner``; gymnasium's sync vector env, and its async
one with a subprocess per env), cube-single-play at the CPU config, exploration budgets 0 and 3, measured in one run
with the settings taking turns. The VGF module acts for the whole batch of sub-env observations in one call. Beside
them: the env's physics alone (one cube env stepped with random actions), the ceiling of a sync EnvRunner.

``--record NAME`` writes benchmarks/results/NAME/record.json.
Usage: python benchmarks/vector_collection.py [--envs 8] [--steps 2000] [--repeats 2] [--record vector-collection]
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
from online_sampling import build, env_steps_per_second  # noqa: E402
from records import RESULTS, write_record  # noqa: E402

BUDGETS = (0, 3)


def physics_steps_per_second(steps: int = 1000) -> float:
    """One cube env stepped with random actions: what a step costs before any acting or RLlib."""
    from vgf_ray.envs import VGFEnv

    env = VGFEnv({"ogbench": "cube-single-play"})
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def settings_of(envs: int) -> dict[str, tuple[int, str]]:
    """The compared EnvRunner settings, baseline first: (envs per runner, gymnasium vectorize mode)."""
    return {"1 env": (1, "sync"), f"{envs} envs, sync": (envs, "sync"), f"{envs} envs, async": (envs, "async")}


def measure(path: str, settings: dict[str, tuple[int, str]], steps: int,
            repeats: int) -> dict[str, dict[str, float]]:
    """Median env steps/s per exploration budget and setting; the settings take turns within each repeat."""
    rates: dict[str, dict[str, list[float]]] = {}
    for budget in BUDGETS:
        algos = {label: build(path, 1, exploration_steps=budget, envs_per_runner=envs, vectorize_mode=mode)
                 for label, (envs, mode) in settings.items()}
        row = rates.setdefault(f"L={budget}", {label: [] for label in settings})
        try:
            for algo in algos.values():
                algo.train()  # warm-up: envs made, graphs built
            for _ in range(repeats):
                for label, algo in algos.items():
                    row[label].append(env_steps_per_second(algo, steps))
        finally:
            for algo in algos.values():
                algo.stop()
        print(f"  L={budget}: " + ", ".join(f"{label} {statistics.median(v):.1f}" for label, v in row.items())
              + " env steps/s", flush=True)
    return {key: {label: statistics.median(values) for label, values in row.items()} for key, row in rates.items()}


def render(rates: dict[str, dict[str, float]], physics: float) -> tuple[str, dict[str, dict[str, float]]]:
    """Markdown table of the rates with each setting's ratio to the first, and those ratios."""
    labels = list(next(iter(rates.values())))
    ratios = {key: {label: row[label] / row[labels[0]] for label in labels[1:]} for key, row in rates.items()}
    lines = ["| exploration budget | " + " | ".join(labels) + " | " +
             " | ".join(f"{label} vs {labels[0]}" for label in labels[1:]) + " |",
             "|---|" + "---|" * (2 * len(labels) - 1)]
    for key, row in rates.items():
        lines.append(f"| {key} | " + " | ".join(f"{row[label]:.1f}" for label in labels) + " | "
                     + " | ".join(f"{ratios[key][label]:.2f}x" for label in labels[1:]) + " |")
    lines += ["", f"Env steps/s. Physics alone (one env, random actions, no RLlib): {physics:.1f} steps/s."]
    return "\n".join(lines), ratios


def ceiling_note(rates: dict[str, dict[str, float]], physics: float) -> str:
    """How far vectorizing can go here: no sync EnvRunner steps faster than its env's physics alone."""
    single = rates[f"L={BUDGETS[0]}"]["1 env"]
    return (f"A sync EnvRunner cannot step faster than the physics alone ({physics:.0f} steps/s), so on this machine "
            f"vectorizing can gain at most {physics / single:.2f}x over 1 env at L={BUDGETS[0]}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=8, help="envs per EnvRunner of the vectorized settings")
    parser.add_argument("--steps", type=int, default=2000, help="env steps per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per setting (the median is reported)")
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    import ray

    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset
    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    print(common.machine(), flush=True)
    path = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                      episode_length=201, progress=False))
    physics = physics_steps_per_second()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    rates = measure(path, settings_of(args.envs), args.steps, args.repeats)
    ray.shutdown()
    table, ratios = render(rates, physics)
    print(table, flush=True)
    if args.record:
        write_record(RESULTS / args.record, name=args.record, kind="benchmark",
                     title=f"Online collection, one EnvRunner: {args.envs} vectorized envs against 1 "
                           "(cube-single-play, CPU config, exploration budgets 0 and 3)",
                     figures={"env_steps_per_s": rates, "ratio": ratios, "physics_steps_per_s": physics},
                     table=table, notes=[ceiling_note(rates, physics)])


if __name__ == "__main__":
    main()
