"""Acting latency in ms per action (one observation, N particles) at transport steps L = 0, 1, 3.

Measures VGFTorchRLModule.forward_inference, i.e. what an EnvRunner calls, at the paper and CPU configs in fp32
and bf16, for every acting path (``training.acting``): ``eager`` (autograd, the reference and baseline of the
ratios), ``fused`` (closed-form gradients, vgf_ray.core.fused_acting) and ``compiled`` (the fused function under
torch.compile). Each figure is the median of ``--repeats`` runs of ``--calls`` calls; the spread (max/min of the
repeats) is printed beside it. The authors' JAX figures (same machine type, one observation) are
printed for comparison.

``--no-rllib`` times ``VGFNetworks.act`` itself (the same acting rule without RLlib's module around it; needs only
torch), ``--device cuda`` acts on a GPU, and ``--batch`` acts for several observations per call (vectorised envs).
A figure is then ms per call, not per action.

Usage: python benchmarks/acting_latency.py [--calls 200] [--repeats 5] [--threads N] [--paths eager fused compiled]
                                           [--no-rllib] [--device cuda] [--batch 1 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BUDGETS = (0, 1, 3)
# The authors' JAX code (fp32), ms per action at L = 0 / 1 / 3, measured on the same CPU type.
JAX_REFERENCE_MS = {"paper": (1.89, 3.48, 5.17), "cpu": (0.20, 0.39, 0.58)}
PATHS = ("eager", "fused", "compiled", "auto")  # auto: the default (vgf_ray.core.auto_acting)


def make_module(overrides: dict, bf16: bool, acting: str):
    import gymnasium

    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.rllib.module import VGFTorchRLModule

    obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (common.CUBE_OBS,), np.float32)
    act_space = gymnasium.spaces.Box(-1.0, 1.0, (common.CUBE_ACT,), np.float32)
    hp = VGFHyperParams(**overrides, bf16=bf16, acting=acting)
    return VGFTorchRLModule(observation_space=obs_space, action_space=act_space,
                            model_config={"vgf": hp.to_dict()}).eval()


def make_actor(overrides: dict, bf16: bool, acting: str, rllib: bool, batch: int, device: str):
    """``act(steps)``: a function of no arguments that acts once for ``batch`` observations at ``steps``, through
    the RLlib module (what an EnvRunner calls) or, without ``rllib``, through ``VGFNetworks.act`` alone."""
    torch = common.torch
    obs = torch.randn(batch, common.CUBE_OBS, device=device)
    if rllib:
        module = make_module(overrides, bf16, acting).to(device)

        def act(steps: int):
            module.set_budget(steps)
            return lambda: module.forward_inference({"obs": obs})
        return act
    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.core.transport import TransportBudget
    from vgf_ray.core.vgf import VGFNetworks

    nets = VGFNetworks(common.CUBE_OBS, common.CUBE_ACT, VGFHyperParams(**overrides, bf16=bf16, acting=acting))
    nets = nets.to(device)

    def act(steps: int):
        budget = TransportBudget(steps, nets.hp.vgf_lr)
        return lambda: nets.act(obs, budget)
    return act


def latency_ms(call, calls: int, repeats: int) -> tuple[float, float]:
    """(median ms per call, max/min spread) over ``repeats`` runs of ``calls`` calls (the GPU's queue drained)."""
    torch = common.torch
    runs = []
    with torch.no_grad():
        for _ in range(10):  # warm-up (and compilation for the compiled path)
            call()
        for _ in range(repeats):
            common.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                call()
            common.synchronize()
            runs.append(1000.0 * (time.perf_counter() - start) / calls)
    return statistics.median(runs), max(runs) / min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--configs", nargs="+", choices=list(common.CONFIGS), default=list(common.CONFIGS))
    parser.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--no-rllib", action="store_true", help="time VGFNetworks.act alone (needs only torch)")
    parser.add_argument("--device", default="cpu", help="torch device to act on, e.g. cuda (default cpu)")
    parser.add_argument("--batch", nargs="+", type=int, default=[1], help="observations per call (default 1)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also write the figures as benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    if args.calls < 1 or args.repeats < 1 or (args.threads is not None and args.threads < 1) or min(args.batch) < 1:
        parser.error("--calls, --repeats, --threads and --batch must be >= 1")
    common.check_device(args.device, parser)
    torch = common.torch
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine: {common.machine()}")
    print(f"acting through {'VGFNetworks.act' if args.no_rllib else 'VGFTorchRLModule.forward_inference'} "
          f"on {args.device}")
    print(f"{'config':<7}{'dtype':<6}{'path':<10}{'batch':>6}" + "".join(f"{f'L={s} ms':>10}" for s in BUDGETS)
          + "   x eager (L=0/1/3)      spread    JAX fp32 ms (batch 1)")
    table = ["| config | dtype | path | batch | " + " | ".join(f"L={s} ms" for s in BUDGETS) + " | x eager |",
             "|---|---|---|---|" + "---|" * len(BUDGETS) + "---|"]
    for name in args.configs:
        for bf16 in [dtype == "bf16" for dtype in args.dtypes]:
            for batch in args.batch:
                baseline = None
                for path in args.paths:
                    start = time.perf_counter()
                    act = make_actor(common.CONFIGS[name], bf16, path, not args.no_rllib, batch, args.device)
                    figures = [latency_ms(act(steps), args.calls, args.repeats) for steps in BUDGETS]
                    ms = [f[0] for f in figures]
                    if path == "eager":
                        baseline = ms
                    ratio = " / ".join(f"{b / m:.2f}" for b, m in zip(baseline, ms)) if baseline else "-"
                    spread = max(f[1] for f in figures)
                    jax = " / ".join(f"{v}" for v in JAX_REFERENCE_MS[name]) if batch == 1 else "-"
                    print(f"{name:<7}{'bf16' if bf16 else 'fp32':<6}{path:<10}{batch:>6}"
                          + "".join(f"{m:10.3f}" for m in ms)
                          + f"   {ratio:<22} {spread:6.2f}    {jax}   ({time.perf_counter() - start:.0f} s)",
                          flush=True)
                    table.append(f"| {name} | {'bf16' if bf16 else 'fp32'} | {path} | {batch} | "
                                 + " | ".join(f"{m:.3f}" for m in ms) + f" | {ratio} |")
    if args.record:
        from records import RESULTS, write_record

        where = "VGFNetworks.act" if args.no_rllib else "VGFTorchRLModule.forward_inference"
        write_record(RESULTS / args.record, name=args.record, kind="benchmark", table="\n".join(table),
                     title=f"Acting latency, ms per call through {where} on {args.device}, by acting path "
                           f"(median of {args.repeats} x {args.calls} calls)",
                     notes=["x eager: the eager (autograd) path's time over this path's, per budget L = 0 / 1 / 3."])


if __name__ == "__main__":
    main()
