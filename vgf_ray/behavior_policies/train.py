"""Train the behavior policies of the MuJoCo locomotion datasets: SAC on Gymnasium's v5 environments.

    python -m vgf_ray.behavior_policies.train --env hopper --steps 400000      # trains; resumes where it stopped
    python -m vgf_ray.behavior_policies.train --env hopper --publish           # writes the shipped files

stable-baselines3's SAC (``pip install vgf_ray[behavior]``) with its default hyperparameters (256x256 networks,
one update per env step, automatic entropy), 10k uniform-random steps first. RLlib's SAC measured 12-17 env
steps/s on two cores against 85-111 for this one (``benchmarks/sac_throughput.py``), so 1M steps would take days.

Every ``--every`` steps the actor is saved as a snapshot, its return is measured over ``--eval-episodes``
stochastic episodes (the behavior that generates the data) and the whole training state is checkpointed: model,
optimizers and replay buffer, as tensors and arrays only (no pickles). An interrupted run resumes from the last
checkpoint. ``--publish`` picks the expert (the last snapshot) and the medium policy (the first snapshot whose
return reaches a third of the expert's, D4RL's definition) and copies them, the snapshots up to the medium one
(they regenerate the medium-replay data), the curve and its plot into the package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import gymnasium
import numpy as np
import torch

from vgf_ray.behavior_policies.publish import publish
from vgf_ray.behavior_policies.returns import CURVE_FILE, LEARNING_STARTS, RUN_FILE, evaluate
from vgf_ray.data.mujoco_names import MUJOCO_ENVS
from vgf_ray.data.mujoco_policy import SquashedGaussianActor

PACKAGE_DIR = Path(__file__).parent
REPLAY_KEYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def actor_weights(model) -> dict[str, np.ndarray]:
    """The SB3 actor's layers under the names ``SquashedGaussianActor`` reads."""
    actor = model.policy.actor
    layers = {"hidden_0": actor.latent_pi[0], "hidden_1": actor.latent_pi[2], "mu": actor.mu, "log_std": actor.log_std}
    return {f"{name}.{part}": getattr(layer, part).detach().cpu().numpy().astype(np.float32)
            for name, layer in layers.items() for part in ("weight", "bias")}



def save_checkpoint(model, folder: Path) -> None:
    """Model, optimizers and replay buffer as tensors and arrays, written to a temp folder then swapped in."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {"policy": model.policy.state_dict(), "actor_opt": model.actor.optimizer.state_dict(),
             "critic_opt": model.critic.optimizer.state_dict(), "ent_opt": model.ent_coef_optimizer.state_dict(),
             "log_ent_coef": model.log_ent_coef.detach().clone(), "num_timesteps": model.num_timesteps,
             "n_updates": model._n_updates, "episode_num": model._episode_num}
    torch.save(state, tmp / "model.pt")
    buffer = model.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    np.savez(tmp / "replay.npz", pos=buffer.pos, full=buffer.full,
             **{k: getattr(buffer, k)[:filled] for k in REPLAY_KEYS})
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(model, folder: Path) -> None:
    """Restore what ``save_checkpoint`` wrote (``weights_only`` loading: tensors and plain values only)."""
    state = torch.load(folder / "model.pt", weights_only=True, map_location="cpu")
    model.policy.load_state_dict(state["policy"])
    model.actor.optimizer.load_state_dict(state["actor_opt"])
    model.critic.optimizer.load_state_dict(state["critic_opt"])
    model.ent_coef_optimizer.load_state_dict(state["ent_opt"])
    with torch.no_grad():
        model.log_ent_coef.copy_(state["log_ent_coef"])
    model.num_timesteps, model._n_updates = state["num_timesteps"], state["n_updates"]
    model._episode_num = state["episode_num"]
    buffer = model.replay_buffer
    with np.load(folder / "replay.npz", allow_pickle=False) as stored:
        for key in REPLAY_KEYS:
            getattr(buffer, key)[: len(stored[key])] = stored[key]
        buffer.pos, buffer.full = int(stored["pos"]), bool(stored["full"])


def make_callback(workdir: Path, env_id: str, every: int, eval_episodes: int, seed: int):
    from stable_baselines3.common.callbacks import BaseCallback

    class SnapshotCallback(BaseCallback):
        """Every ``every`` env steps: snapshot, evaluate, checkpoint, print a progress line. At a rollout's end
        (one env step with SAC's defaults), where the step's transition is already in the replay buffer."""

        def __init__(self):
            super().__init__()
            self.started = time.time()
            self.start_step = None

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            step = self.model.num_timesteps
            self.start_step = step - 1 if self.start_step is None else self.start_step
            if step % every == 0:
                record_snapshot(self.model, workdir, env_id, eval_episodes, seed)
                rate = (step - self.start_step) / max(time.time() - self.started, 1e-9)
                print(f"{env_id} step {step}: {rate:.0f} env steps/s", flush=True)

    return SnapshotCallback()


def record_snapshot(model, workdir: Path, env_id: str, eval_episodes: int, seed: int) -> None:
    step = model.num_timesteps
    actor = SquashedGaussianActor(actor_weights(model))
    actor.save(workdir / "snapshots" / f"step_{step:07d}.npz")
    result = {"step": step, **evaluate(actor, env_id, eval_episodes, seed + 10_000), "time": time.time()}
    with open(workdir / CURVE_FILE, "a") as out:
        out.write(json.dumps(result) + "\n")
    save_checkpoint(model, workdir / "checkpoint")
    print(f"{env_id} step {step}: return {result['return_mean']:.1f} +- {result['return_std']:.1f}", flush=True)


def truncate_curve(workdir: Path, step: int) -> None:
    """Drop curve rows and snapshots after the checkpoint being resumed (they are measured again)."""
    path = workdir / CURVE_FILE
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= step))
    for snap in (workdir / "snapshots").glob("step_*.npz"):
        if int(snap.stem.split("_")[1]) > step:
            snap.unlink()


def run_settings(workdir: Path, settings: dict) -> dict:
    """The run's settings: written on the first start, and a resume with other settings is refused."""
    path = workdir / RUN_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        changed = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
        if changed:
            raise SystemExit(f"{workdir} was trained with other settings {changed} (saved, given); "
                             "use another --workdir")
        return saved
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return settings


def train(env: str, steps: int, workdir: Path, every: int, eval_episodes: int, seed: int, device: str,
          learning_starts: int = LEARNING_STARTS) -> None:
    from stable_baselines3 import SAC

    torch.set_num_threads(int(os.environ.get("VGF_RAY_TORCH_THREADS", "1")))
    env_id = MUJOCO_ENVS[env]
    (workdir / "snapshots").mkdir(parents=True, exist_ok=True)
    run_settings(workdir, {"env": env, "seed": seed, "every": every, "eval_episodes": eval_episodes,
                           "learning_starts": learning_starts})
    model = SAC("MlpPolicy", gymnasium.make(env_id), learning_starts=learning_starts, seed=seed, device=device)
    if (workdir / "checkpoint" / "model.pt").exists():
        load_checkpoint(model, workdir / "checkpoint")
        truncate_curve(workdir, model.num_timesteps)
        print(f"{env_id}: resumed at step {model.num_timesteps}", flush=True)
    else:
        truncate_curve(workdir, -1)
        record_snapshot(model, workdir, env_id, eval_episodes, seed)
    remaining = steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=make_callback(workdir, env_id, every, eval_episodes, seed),
                    reset_num_timesteps=False)
    print(f"{env_id}: trained to step {model.num_timesteps}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=sorted(MUJOCO_ENVS))
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps to train to (resumes below it)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/behavior"), help="checkpoints and snapshots")
    parser.add_argument("--every", type=int, default=10_000, help="env steps between snapshots")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device of the SAC updates (cuda where there is one)")
    parser.add_argument("--learning-starts", type=int, default=LEARNING_STARTS, help="uniform-random steps first")
    parser.add_argument("--publish", action="store_true", help="copy the expert, medium and curve into the package")
    args = parser.parse_args(argv)
    workdir = args.workdir / args.env
    if args.publish:

        publish(args.env, workdir, PACKAGE_DIR / args.env)
    else:
        train(args.env, args.steps, workdir, args.every, args.eval_episodes, args.seed, args.device,
              args.learning_starts)


if __name__ == "__main__":
    main()
