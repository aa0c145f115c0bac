"""Why does transport help or hurt? Paired-seed evaluation of one checkpoint under transport variants, plus
statistics of the critic's action-gradient on dataset states.

Every budget and variant plays the same episodes (same env reset seeds, same behavior-sample seeds), so
differences between rows come from the transport alone, not from evaluation noise between runs.

Usage:
  python benchmarks/transport_diagnostics.py CHECKPOINT --episodes 30 --budgets 0 1 2 3 \
      [--step-size 0.05] [--no-bf16] [--no-repulsion] [--euler] [--freeze-dims 4] [--gradient-stats DATASET.npz]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402, F401  (environment defaults)
import torch  # noqa: E402


def load_networks(checkpoint: str):
    from ray.rllib.core.rl_module.rl_module import RLModule

    from vgf_ray.rllib.algorithm import module_checkpoint_path

    path = module_checkpoint_path(checkpoint)
    if not path.exists():
        raise SystemExit(f"{checkpoint}: no VGF module weights at {path} (expected an algorithm checkpoint folder)")
    return RLModule.from_checkpoint(str(path)).nets


def apply_variant(nets, args: argparse.Namespace) -> None:
    """Change the transport in place: dtype, repulsion, step rule, and dimensions held at their samples."""
    if args.no_bf16:
        nets.hp.bf16 = False
    settings = nets.transport_settings
    if args.no_repulsion:
        settings = dataclasses.replace(settings, repulsion=False)
    if args.euler:
        settings = dataclasses.replace(settings, step_rule="euler")
    nets.transport_settings = settings
    if args.freeze_dims:
        moved = nets.transport

        def transport_with_frozen_dims(obs_rep, particles, budget):
            out = moved(obs_rep, particles, budget).clone()
            out[..., args.freeze_dims] = particles[..., args.freeze_dims]
            return out

        nets.transport = transport_with_frozen_dims


def paired_success(nets, env_name: str, budgets: list[int], step_size: float, episodes: int) -> dict[int, float]:
    from vgf_ray.core.transport import TransportBudget
    from vgf_ray.envs import VGFEnv

    env = VGFEnv({"ogbench": env_name})
    results = {}
    start = time.perf_counter()
    for steps in budgets:
        successes = []
        for episode in range(episodes):
            generator = torch.Generator().manual_seed(1000 + episode)
            obs, _ = env.reset(seed=episode)
            done, info = False, {}
            while not done:
                action = nets.act(torch.as_tensor(obs)[None], TransportBudget(steps, step_size), generator=generator)
                obs, _, terminated, truncated, info = env.step(action[0].numpy())
                done = terminated or truncated
            successes.append(float(info.get("success", 0.0)))
        results[steps] = float(np.mean(successes))
        print(f"L={steps} step_size={step_size}: success {results[steps]:.3f} over {episodes} paired episodes "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return results


def sign_agreement(nets, obs: torch.Tensor, actions: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per action dim: the mean over states of sign(dQ/da) (+-1 = the same push everywhere) and mean |dQ/da|."""
    from vgf_ray.core.transport import q_action_gradient

    grad = q_action_gradient(nets.q_values, obs, actions, nets.hp.vgf_q_agg)
    dims = tuple(range(grad.dim() - 1))
    return torch.sign(grad).mean(dims).numpy(), grad.abs().mean(dims).numpy()


def gradient_stats(nets, dataset: str, step_size: float, states: int = 512) -> None:
    """Per action dimension: |dQ/da|, how often its sign agrees across states, and the mean displacement."""
    from vgf_ray.core.transport import TransportBudget

    data = np.load(dataset)
    rows = np.random.default_rng(0).choice(len(data["observations"]), states, replace=False)
    obs = torch.as_tensor(data["observations"][rows]).float()
    obs_rep, x0 = nets.sample_particles(obs, TransportBudget(0, step_size), torch.Generator().manual_seed(0))
    agreement, magnitude = sign_agreement(nets, obs_rep, x0)
    x3 = nets.transport(obs_rep, x0, TransportBudget(3, step_size))
    fmt = lambda t: np.array2string(np.asarray(t), precision=3)  # noqa: E731
    print(f"dataset action std per dim:           {fmt(torch.as_tensor(data['actions']).std(0))}")
    print(f"mean |dQ/da| per dim:                 {fmt(magnitude)}")
    print(f"mean sign(dQ/da) over states per dim: {fmt(agreement)}  (0 = state-specific)")
    print(f"mean signed displacement after L=3:   {fmt((x3 - x0).mean((0, 1)))}")
    with torch.no_grad():
        q0, q3 = (nets.q_values(obs_rep, x).mean(0).mean().item() for x in (x0, x3))
    print(f"mean particle Q: L=0 {q0:.2f}, L=3 {q3:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--env", default="cube-single-play")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--budgets", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--step-size", type=float, default=None, help="default: the trained vgf_lr")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--no-repulsion", action="store_true")
    parser.add_argument("--euler", action="store_true", help="the paper's plain step instead of particle Adam")
    parser.add_argument("--freeze-dims", type=int, nargs="*", default=[], help="action dims transport may not move")
    parser.add_argument("--gradient-stats", metavar="DATASET_NPZ", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    nets = load_networks(args.checkpoint)
    bad_dims = [d for d in args.freeze_dims if not 0 <= d < nets.act_dim]
    if bad_dims:
        parser.error(f"--freeze-dims {bad_dims}: the action has dimensions 0..{nets.act_dim - 1}")
    apply_variant(nets, args)
    step_size = args.step_size if args.step_size is not None else nets.hp.vgf_lr
    print(f"machine: {common.machine()}")
    if args.gradient_stats:
        gradient_stats(nets, args.gradient_stats, step_size)
    if args.episodes:
        paired_success(nets, args.env, args.budgets, step_size, args.episodes)


if __name__ == "__main__":
    main()
