"""Is the critic's state-independent action-gradient a property of the data or of the fit? Train the plain
PyTorch VGF learner (no Ray) from several seeds on one dataset and print, every few thousand steps, how much the
sign of dQ/da agrees across dataset states, per action dimension (0 = state-specific, 1 = the same push in
every state), and the mean |dQ/da|.

If the strongly agreeing dimensions and their signs change with the seed and along training, transport at that
point follows an artifact of the fit rather than anything the data say about actions.

Usage: python benchmarks/critic_gradient_drift.py DATASET.npz [--env cube-single-play] [--seeds 1 2]
       [--steps 10000] [--every 2500]   (CPU-scale nets and transport, as tune_configs/ogbench/*-cpu.yaml)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from transport_diagnostics import sign_agreement  # noqa: E402

torch = common.torch
BATCH_SIZE = 256  # the authors' batch size (spec 3.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--env", default="cube-single-play")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=2_500)
    parser.add_argument("--states", type=int, default=1024)
    args = parser.parse_args()
    if args.every < 1 or args.steps < 0 or args.states < 1:
        parser.error("--every and --states must be >= 1 and --steps >= 0")

    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.core.vgf import VGFAgent
    from vgf_ray.data.ogbench_load import load_ogbench_transitions
    from vgf_ray.data.replay import OfflineOnlineReplay

    data, info = load_ogbench_transitions(args.env, args.dataset)
    replay = OfflineOnlineReplay(data)  # the learner's own in-memory sampler (no online data: uniform)
    size = len(replay)
    rows = torch.as_tensor(np.random.default_rng(0).choice(size, min(args.states, size), replace=False))
    obs, actions = replay.offline["observations"][rows], replay.offline["actions"][rows]
    hp = VGFHyperParams(**{**common.CPU, "vgf_alpha": 0.5, "bf16": True})
    print(f"machine: {common.machine()}\n{args.env}: {size} transitions, {len(rows)} states; columns = action dims")
    for seed in args.seeds:
        agent = VGFAgent(info["obs_dim"], info["act_dim"], hp, seed=seed)
        sampler = torch.Generator().manual_seed(seed)
        for step in range(args.steps + 1):
            if step % args.every == 0:
                agreement, magnitude = sign_agreement(agent.nets, obs, actions)
                print(f"seed {seed} step {step:>6}: sign agreement {np.array2string(agreement, precision=2)}  "
                      f"mean |dQ/da| {np.array2string(magnitude, precision=2)}", flush=True)
            if step < args.steps:
                agent.update(replay.sample(BATCH_SIZE, sampler))


if __name__ == "__main__":
    main()
