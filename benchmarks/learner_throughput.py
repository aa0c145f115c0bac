"""Learner throughput (gradient steps/s) at the paper and CPU configs, fp32 and bf16, and RLlib's overhead.

Three loops on the same config, measured in this run:
  bare   - the plain-PyTorch VGFAgent.update loop (no Ray): the baseline
  learner- VGFTorchLearner.run_vgf_updates (RLlib optimizers/_update, in-memory buffer)
  train  - the full Algorithm.train() loop (evaluation off)
Prints steps/s (the median of ``--repeats`` measurements, with their min-max spread) and the ratios learner/bare
and train/bare (target >= 0.9).
Usage: python benchmarks/learner_throughput.py [--configs paper cpu] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def bare_rates(overrides: dict, bf16: bool, steps: int, repeats: int) -> list[float]:
    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.core.vgf import VGFAgent

    device = "cuda" if common.torch.cuda.is_available() else "cpu"
    agent = VGFAgent(common.CUBE_OBS, common.CUBE_ACT, VGFHyperParams(**overrides, bf16=bf16), device=device)
    batch = common.random_batch(device=device)
    return [common.rate(lambda: agent.update(batch), steps) for _ in range(repeats)]


def rllib_rates(overrides: dict, bf16: bool, steps: int, dataset_path: str, repeats: int) -> tuple[list, list]:
    import time

    from vgf_ray.rllib import VGFConfig

    config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
              .training(**overrides, bf16=bf16, updates_per_iteration=steps,
                        dataset={"name": "cube-single-play", "path": dataset_path})
              .evaluation(evaluation_interval=None)
              .learners(num_gpus_per_learner=1 if common.torch.cuda.is_available() else 0))
    algo = config.build_algo()
    learner_rates, train_rates = [], []
    try:
        learner = algo.learner_group._learner
        learner.run_vgf_updates(3)  # warm-up (and loads the buffer)
        for _ in range(repeats):
            start = time.perf_counter()
            learner.run_vgf_updates(steps)
            learner_rates.append(steps / (time.perf_counter() - start))
        algo.train()  # warm-up iteration
        for _ in range(repeats):
            start = time.perf_counter()
            algo.train()
            train_rates.append(steps / (time.perf_counter() - start))
    finally:
        algo.stop()
    return learner_rates, train_rates


def shown(rates: list[float]) -> str:
    """Median (min-max) of repeated measurements."""
    return f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["paper", "cpu"], choices=sorted(common.CONFIGS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per loop (median and spread)")
    parser.add_argument("--no-rllib", action="store_true", help="only the bare PyTorch loop")
    args = parser.parse_args()
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    print(f"machine: {common.machine()}")
    dataset_path = None
    if not args.no_rllib:
        import ray

        from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

        dataset_path = str(ensure_ogbench_dataset("cube-single-play", 2000, Path(tempfile.gettempdir()) / "vgf_bench",
                                                  episode_length=201, progress=False))
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    peak = {False: common.matmul_tflops(common.torch.float32), True: common.matmul_tflops(common.torch.bfloat16)}
    print(f"matmul peak (2560x512 @ 512x512): fp32 {peak[False]:.2f} TFLOP/s, bf16 {peak[True]:.2f} TFLOP/s")
    for name in args.configs:
        gflops = common.vgf_step_flops(common.CONFIGS[name]) / 1e9
        print(f"{name}: {gflops:.1f} GFLOP of matmuls per step -> compute bound {peak[False] * 1e3 / gflops:.1f} "
              f"(fp32) / {peak[True] * 1e3 / gflops:.1f} (bf16) steps/s")
    print(f"{'config':<7}{'dtype':<6}{'bare':>20}{'learner':>20}{'train':>20}{'learner/bare':>14}{'train/bare':>12}"
          "   (gradient steps/s: median (min-max))")
    for name in args.configs:
        for bf16 in (False, True):
            overrides = common.CONFIGS[name]
            steps = args.steps * (1 if name == "paper" else 5)  # similar wall time per measurement
            bare = bare_rates(overrides, bf16, steps, args.repeats)
            if args.no_rllib:
                print(f"{name:<7}{'bf16' if bf16 else 'fp32':<6}{shown(bare):>20}", flush=True)
                continue
            learner, train = rllib_rates(overrides, bf16, steps, dataset_path, args.repeats)
            b, lr, tr = (statistics.median(x) for x in (bare, learner, train))
            print(f"{name:<7}{'bf16' if bf16 else 'fp32':<6}{shown(bare):>20}{shown(learner):>20}{shown(train):>20}"
                  f"{lr / b:14.2f}{tr / b:12.2f}", flush=True)


if __name__ == "__main__":
    main()
