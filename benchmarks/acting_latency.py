"""Acting latency in ms per action (one observation, N particles) at transport steps L = 0, 1, 3.

Measures VGFTorchRLModule.forward_inference, i.e. what an EnvRunner calls, at the paper and CPU configs in
fp32 and bf16. Reference: the authors' JAX code takes 2.4 / 4.6 / 6.5 ms at the paper config on this CPU.
Usage: python benchmarks/acting_latency.py [--calls 200] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

JAX_REFERENCE_MS = {0: 2.4, 1: 4.6, 3: 6.5}


def make_module(overrides: dict, bf16: bool):
    import gymnasium

    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.rllib.module import VGFTorchRLModule

    obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (common.CUBE_OBS,), np.float32)
    act_space = gymnasium.spaces.Box(-1.0, 1.0, (common.CUBE_ACT,), np.float32)
    hp = VGFHyperParams(**overrides, bf16=bf16)
    return VGFTorchRLModule(observation_space=obs_space, action_space=act_space,
                            model_config={"vgf": hp.to_dict()}).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    args = parser.parse_args()
    if args.calls < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--calls and --threads must be >= 1")
    torch = common.torch
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"machine: {common.machine()}")
    print(f"{'config':<7}{'dtype':<6}" + "".join(f"{f'L={s} ms':>10}" for s in JAX_REFERENCE_MS)
          + "   JAX reference: " + " / ".join(f"{v}" for v in JAX_REFERENCE_MS.values()) + " ms (paper config)")
    obs = {"obs": torch.randn(1, common.CUBE_OBS)}
    for name, overrides in common.CONFIGS.items():
        for bf16 in (False, True):
            module = make_module(overrides, bf16)
            row = []
            for steps in JAX_REFERENCE_MS:
                module.set_budget(steps)
                with torch.no_grad():
                    per_s = common.rate(lambda m=module: m.forward_inference(obs), args.calls, warmup=10)
                row.append(1000.0 / per_s)
            print(f"{name:<7}{'bf16' if bf16 else 'fp32':<6}" + "".join(f"{ms:10.2f}" for ms in row), flush=True)


if __name__ == "__main__":
    main()
