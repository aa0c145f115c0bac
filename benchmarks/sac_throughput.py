"""Env steps/s of SAC training on Hopper-v5: RLlib's SAC against stable-baselines3's, in one run.

Why the behavior policies are trained with stable-baselines3: both at their defaults (256x256 networks, batch
256, one update per env step, one env), measured after learning starts, one torch thread each, taking turns.
Prints env steps/s of each and the ratio; ``--record NAME`` writes benchmarks/results/NAME/record.json.
Usage: python benchmarks/sac_throughput.py [--steps 600] [--record sac-throughput]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from records import RESULTS, write_record  # noqa: E402

ENV_ID = "Hopper-v5"
WARMUP = 1500  # random steps before updates (RLlib SAC's default num_steps_sampled_before_learning_starts)


def rllib_rate(steps: int) -> float:
    """RLlib's SAC (new API stack, the local EnvRunner): env steps/s over ``steps`` steps after learning starts."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    algo = (SACConfig().environment(ENV_ID).env_runners(num_env_runners=0)
            .training(num_steps_sampled_before_learning_starts=WARMUP).build_algo())

    def sampled(result) -> int:
        return int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])

    done = 0
    while done < WARMUP + 50:
        done = sampled(algo.train())
    start_steps, start = done, time.perf_counter()
    while done < start_steps + steps:
        done = sampled(algo.train())
    rate = (done - start_steps) / (time.perf_counter() - start)
    algo.stop()
    return rate


def sb3_rate(steps: int) -> float:
    """stable-baselines3's SAC: env steps/s over ``steps`` steps after learning starts."""
    import gymnasium
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", gymnasium.make(ENV_ID), learning_starts=WARMUP, device="cpu", seed=0)
    model.learn(WARMUP + 50)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="timed env steps per trainer")
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    import ray
    import torch

    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    torch.set_num_threads(1)
    print(common.machine(), flush=True)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rates = {"rllib": rllib_rate(args.steps), "stable_baselines3": sb3_rate(args.steps)}
    ratio = rates["stable_baselines3"] / rates["rllib"]
    for name, value in rates.items():
        print(f"{name:>18}: {value:6.1f} env steps/s", flush=True)
    print(f"stable-baselines3 / RLlib: {ratio:.1f}x", flush=True)
    if args.record:
        table = "\n".join(["| trainer | env steps/s |", "|---|---|",
                           *(f"| {name} SAC | {value:.1f} |" for name, value in rates.items()),
                           f"| ratio | {ratio:.1f}x |"])
        write_record(RESULTS / args.record, name=args.record, kind="benchmark",
                     title=f"SAC training speed on {ENV_ID}: RLlib against stable-baselines3",
                     figures={"env_steps_per_s": rates, "ratio": ratio, "timed_steps": args.steps}, table=table,
                     notes=["Both at their defaults: 256x256 networks, batch 256, one update per env step, one "
                            "env, one torch thread, measured after learning starts. The behavior policies of the "
                            "MuJoCo datasets are trained with the faster one."])
    ray.shutdown()


if __name__ == "__main__":
    main()
