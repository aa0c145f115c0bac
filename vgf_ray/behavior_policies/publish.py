"""Pick the expert and medium policies of a training run and write the files the package ships.

Expert: the snapshot with the highest measured return among the last five (SAC's return wobbles between
snapshots). Medium: the first snapshot whose return reaches a third of the expert's (D4RL's definition). The
random, medium and expert returns are then measured again over ``REFERENCE_EPISODES`` fresh episodes each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vgf_ray.behavior_policies.returns import LEARNING_STARTS, RUN_FILE, evaluate, random_return, read_curve
from vgf_ray.data.mujoco_names import MUJOCO_ENVS
from vgf_ray.data.mujoco_policy import SquashedGaussianActor
from vgf_ray.data.mujoco_refs import REFS_FILE
from vgf_ray.plots import plot_behavior_curve

REFERENCE_EPISODES = 100
REFERENCE_SEED = 1_000_000  # episodes the training-time evaluations never used



def pick_levels(curve: list[dict], learning_starts: int) -> tuple[dict, dict]:
    """(expert row, medium row) of the curve."""
    expert = max(curve[-5:], key=lambda row: row["return_mean"])
    target = expert["return_mean"] / 3.0
    trained = [row for row in curve if row["step"] > learning_starts]
    medium = next(row for row in trained if row["return_mean"] >= target)
    return expert, medium



def publish(env: str, workdir: Path, out: Path, episodes: int = REFERENCE_EPISODES) -> None:
    """Write ``out`` (expert, medium, replay snapshots, refs, curve and plot) from the training run in ``workdir``."""
    env_id = MUJOCO_ENVS[env]
    curve = read_curve(workdir)
    run = json.loads((workdir / RUN_FILE).read_text()) if (workdir / RUN_FILE).exists() else {}
    learning_starts = int(run.get("learning_starts", LEARNING_STARTS))
    expert, medium = pick_levels(curve, learning_starts)
    shutil.rmtree(out, ignore_errors=True)
    (out / "replay").mkdir(parents=True)
    snapshot = lambda step: workdir / "snapshots" / f"step_{step:07d}.npz"  # noqa: E731
    refs: dict = {"env_id": env_id, "learning_starts": learning_starts, "trainer": "stable-baselines3 SAC",
                  "reference_episodes": episodes, "replay_snapshots": []}
    for level, row in (("expert", expert), ("medium", medium)):
        shutil.copyfile(snapshot(row["step"]), out / f"{level}.npz")
        actor = SquashedGaussianActor.load(out / f"{level}.npz")
        measured = evaluate(actor, env_id, episodes, REFERENCE_SEED)
        refs[level] = {"file": f"{level}.npz", "step": row["step"], **measured, "episodes": episodes}
        print(f"{env_id} {level}: step {row['step']}, return {measured['return_mean']:.1f}", flush=True)
    refs["random"] = random_return(env_id, episodes, REFERENCE_SEED)
    for row in curve:
        if learning_starts <= row["step"] < medium["step"]:
            name = f"replay/step_{row['step']:07d}.npz"
            shutil.copyfile(snapshot(row["step"]), out / name)
            refs["replay_snapshots"].append([row["step"], name])
    (out / REFS_FILE).write_text(json.dumps(refs, indent=2) + "\n")
    (out / "curve.json").write_text(json.dumps(curve, indent=1) + "\n")
    plot_behavior_curve(curve, refs, out / "curve.png")
    print(f"{env_id}: published to {out}", flush=True)
