"""Learner throughput (gradient steps/s) at the paper and CPU configs, fp32 and bf16, and RLlib's overhead.

Three loops on the same config, measured in this run:
  bare   - the plain-PyTorch VGFAgent.update loop (no Ray): the baseline
  learner- VGFTorchLearner.run_vgf_updates (RLlib optimizers/_update, in-memory buffer)
  train  - the full Algorithm.train() loop (evaluation off)
Each runs with the TD target's transport eager (the autograd reference, the baseline) and compiled
(``training.target_transport``). Prints steps/s (the median of ``--repeats`` measurements, with their min-max
spread) and the ratios learner/bare and train/bare (target >= 0.9); the three loops alternate within each repeat.
Usage: python benchmarks/learner_throughput.py [--configs paper cpu] [--steps 20] [--repeats 3]
                                               [--target-transport auto eager fused compiled] [--dtypes fp32 bf16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def paired_rates(overrides: dict, bf16: bool, steps: int, dataset_path: str | None, repeats: int,
                 rllib: bool) -> dict[str, list[float]]:
    """steps/s of each loop, measured in turn within every repeat (bare, learner, train, bare, ...), so a drift of
    the machine's speed over the minutes of a run shows in all three and not in their ratios."""
    import time

    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.core.vgf import VGFAgent

    device = "cuda" if common.torch.cuda.is_available() else "cpu"
    agent = VGFAgent(common.CUBE_OBS, common.CUBE_ACT, VGFHyperParams(**overrides, bf16=bf16), device=device)
    batch = common.random_batch(device=device)
    loops = {"bare": lambda: [agent.update(batch) for _ in range(steps)]}
    algo = None
    if rllib:
        from vgf_ray.rllib import VGFConfig

        config = (VGFConfig().environment(env_config={"ogbench": "cube-single-play"})
                  .training(**overrides, bf16=bf16, updates_per_iteration=steps,
                            dataset={"name": "cube-single-play", "path": dataset_path})
                  .evaluation(evaluation_interval=None)
                  .learners(num_gpus_per_learner=1 if common.torch.cuda.is_available() else 0))
        algo = config.build_algo()
        learner = algo.learner_group._learner
        loops["learner"] = lambda: learner.run_vgf_updates(steps)
        loops["train"] = algo.train
    rates: dict[str, list[float]] = {name: [] for name in loops}
    try:
        for _ in range(3):  # warm-up: compiles, loads the buffer, one train() iteration
            agent.update(batch)
        if algo is not None:
            learner.run_vgf_updates(3)
            algo.train()
        for _ in range(repeats):
            for name, loop in loops.items():
                common.synchronize()
                start = time.perf_counter()
                loop()
                common.synchronize()
                rates[name].append(steps / (time.perf_counter() - start))
    finally:
        if algo is not None:
            algo.stop()
    return rates


def shown(rates: list[float]) -> str:
    """Median (min-max) of repeated measurements."""
    return f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["paper", "cpu"], choices=sorted(common.CONFIGS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="measurements per loop (median and spread)")
    parser.add_argument("--no-rllib", action="store_true", help="only the bare PyTorch loop")
    parser.add_argument("--target-transport", nargs="+", default=["eager", "fused", "compiled", "auto"],
                        choices=["auto", "eager", "fused", "compiled"],
                        help="TD-target transport paths to measure (training.target_transport); eager is the baseline")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also write the figures as benchmarks/results/NAME/record.json")
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
    device = "cuda" if common.torch.cuda.is_available() else "cpu"  # where paired_rates' VGFAgent runs
    peak = {bf16: common.matmul_tflops(common.torch.bfloat16 if bf16 else common.torch.float32, device=device)
            for bf16 in (False, True)}
    onednn = common.onednn_fp32_tflops() if device == "cpu" else float("nan")
    print(f"matmul peak (2560x512 @ 512x512): fp32 {peak[False]:.2f} TFLOP/s, bf16 {peak[True]:.2f} TFLOP/s "
          f"(aten); fp32 through oneDNN {onednn:.2f} TFLOP/s")
    for name in args.configs:
        gflops = common.vgf_step_flops(common.CONFIGS[name]) / 1e9
        print(f"{name}: {gflops:.1f} GFLOP of matmuls per step -> compute bound {peak[False] * 1e3 / gflops:.1f} "
              f"(fp32, aten) / {onednn * 1e3 / gflops:.1f} (fp32, oneDNN) / {peak[True] * 1e3 / gflops:.1f} (bf16) "
              "steps/s")
    print(f"{'config':<7}{'dtype':<6}{'TD target':<10}{'bare':>20}{'learner':>20}{'train':>20}{'learner/bare':>14}"
          f"{'train/bare':>12}   (gradient steps/s: median (min-max); the loops alternate within each repeat)")
    table = ["| config | dtype | TD target | bare | learner | train |", "|---|---|---|---|---|---|"]
    for name in args.configs:
        for bf16 in [dtype == "bf16" for dtype in args.dtypes]:
            for path in args.target_transport:
                overrides = {**common.CONFIGS[name], "target_transport": path}
                steps = args.steps * (1 if name == "paper" else 5)  # similar wall time per measurement
                rates = paired_rates(overrides, bf16, steps, dataset_path, args.repeats, not args.no_rllib)
                row = f"{name:<7}{'bf16' if bf16 else 'fp32':<6}{path:<10}{shown(rates['bare']):>20}"
                if not args.no_rllib:
                    b, lr, tr = (statistics.median(rates[k]) for k in ("bare", "learner", "train"))
                    row += f"{shown(rates['learner']):>20}{shown(rates['train']):>20}{lr / b:14.2f}{tr / b:12.2f}"
                print(row, flush=True)
                loops = [shown(rates[k]) if k in rates and rates[k] else "-" for k in ("bare", "learner", "train")]
                table.append(f"| {name} | {'bf16' if bf16 else 'fp32'} | {path} | " + " | ".join(loops) + " |")
    if args.record:
        from records import RESULTS, write_record

        write_record(RESULTS / args.record, name=args.record, kind="benchmark", table="\n".join(table),
                     title="Learner throughput, gradient steps/s: the bare PyTorch loop, RLlib's learner and the "
                           "full train() loop, by TD-target transport path",
                     notes=[f"median (min-max) of {args.repeats} measurements; the loops alternate within each "
                            f"repeat. matmul peak: fp32 {peak[False]:.2f}, bf16 {peak[True]:.2f} TFLOP/s."])

if __name__ == "__main__":
    main()
