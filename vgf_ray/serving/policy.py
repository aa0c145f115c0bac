"""A checkpoint's greedy policy for serving: VGF with the transport budget per row, or a baseline's policy.

Loads the RLModule alone (no EnvRunners, no learner): what one Serve replica or an export holds. The env of the
run is built once for its spaces, so observations are taken and actions returned in the env's own units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from ray.rllib.core.rl_module.rl_module import RLModule

from vgf_ray import __version__
from vgf_ray.core.fused_acting import fused_settings, pack_weights
from vgf_ray.errors import InputError
from vgf_ray.rllib.batched_evaluation import greedy_actions
from vgf_ray.rllib.checkpoint_check import (
    CTOR_ARGS,
    MODULE_DIR,
    CheckpointError,
    check_checkpoint,
    load_checkpoint_file,
)
from vgf_ray.rllib.compat import ALGORITHM_STATE_FILE, saved_class, saved_ctor_args
from vgf_ray.rllib.evaluation import evaluation_step_size
from vgf_ray.rllib.shared import OfflineDataAlgorithm
from vgf_ray.serving.acting import greedy_action, to_env_box

MAX_BUDGET = 32  # transport steps a request may ask for: the paper's budgets are 0..3, the toy's up to 20
MAX_STEP_SIZE = 2.0  # a step of 2 crosses the whole [-1, 1] action box


@dataclass(frozen=True)
class PolicySpec:
    """What a client needs to know: spaces, algorithm, the budget's default and range."""

    algorithm: str
    obs_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    default_budget: int
    default_step_size: float
    max_budget: int
    checkpoint: str
    observation_space: dict = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "checkpoint": self.checkpoint, "version": __version__,
                "observation_space": self.observation_space,
                "action_space": {"shape": [len(self.action_low)], "low": self.action_low.tolist(),
                                 "high": self.action_high.tolist()},
                "default_budget": self.default_budget, "budget_range": [0, self.max_budget],
                "default_step_size": self.default_step_size, "step_size_range": [0.0, MAX_STEP_SIZE]}


class ServedPolicy:
    """Greedy actions for batches of observations; each row may carry its own budget, step size and seed."""

    def __init__(self, checkpoint: str | Path, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module, config, counters = load_module(checkpoint)
        self.module.to(self.device)
        self.is_vgf = hasattr(self.module, "nets")
        self.spec = _spec(checkpoint, self.module, config, counters, self.is_vgf)
        self.generator = torch.Generator().manual_seed(int.from_bytes(np.random.bytes(4), "little"))
        if self.is_vgf:
            nets = self.module.nets
            if nets.grad_net is not None:
                raise InputError(f"serve {checkpoint}: A-VGF (variant avgf) acts through its gradient network, "
                                 "which serving does not support; serve a variant vgf checkpoint")
            self.pack = pack_weights(nets, torch.float32)
            self.settings = fused_settings(nets)
        self._low = torch.as_tensor(self.spec.action_low, dtype=torch.float32, device=self.device)
        self._high = torch.as_tensor(self.spec.action_high, dtype=torch.float32, device=self.device)

    def noise(self, rows: int, seed: int | None) -> torch.Tensor:
        """Behavior noise ``[rows, N, d]``, drawn as the module draws it: from ``seed`` when given."""
        generator = self.generator if seed is None else torch.Generator().manual_seed(int(seed))
        nets = self.module.nets
        return torch.randn((rows, nets.hp.num_particles, nets.act_dim), generator=generator)

    def act(self, obs: np.ndarray, budgets: list[int], step_sizes: list[float], noise: torch.Tensor | None
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(actions [B, d] in the env's box, Q of each chosen particle [B] or None for a baseline)``; rows that
        share a step size are moved in one call, each by its own budget."""
        obs_t = torch.as_tensor(np.asarray(obs, np.float32), device=self.device)
        if not self.is_vgf:
            return self._baseline_act(obs_t), None
        actions = torch.empty((obs_t.shape[0], len(self.spec.action_low)), device=self.device)
        q = torch.empty(obs_t.shape[0], device=self.device)
        sizes = np.asarray(step_sizes, np.float64)
        with torch.no_grad():
            for size in np.unique(sizes):
                rows = torch.as_tensor(np.flatnonzero(sizes == size), device=self.device)
                steps = torch.as_tensor([budgets[i] for i in rows.tolist()], device=self.device)
                a, q_rows = greedy_action(self.pack, self.settings, self.module.nets.hp.bc_flow_steps, obs_t[rows],
                                          noise[rows.cpu()].to(self.device), int(steps.max()), float(size), steps)
                actions[rows], q[rows] = to_env_box(a, self._low, self._high), q_rows
        return actions.cpu().numpy(), q.cpu().numpy()

    def _baseline_act(self, obs: torch.Tensor) -> np.ndarray:
        unit = torch.as_tensor(greedy_actions(self.module, obs.cpu().numpy(), [0] * obs.shape[0], 0.0))
        return to_env_box(unit, self._low.cpu(), self._high.cpu()).numpy()


def load_module(checkpoint: str | Path) -> tuple[Any, Any, dict]:
    """``(RLModule, the run's AlgorithmConfig, its counters)`` from a checkpoint ``evaluate`` accepts; a bad one
    raises ``CheckpointError`` with the same one-line message."""
    folder = checked_checkpoint(checkpoint)
    state = saved_ctor_args(load_checkpoint_file(folder / CTOR_ARGS))[0][0]
    config = saved_class(state).from_state(state)
    saved_state = folder / ALGORITHM_STATE_FILE
    counters = load_checkpoint_file(saved_state).get("vgf_counters", {}) if saved_state.exists() else {}
    return RLModule.from_checkpoint(str(folder / MODULE_DIR)), config, counters


def checked_checkpoint(checkpoint: str | Path, flag: str = "serve") -> Path:
    """The checkpoint's folder once ``check_checkpoint`` accepts it as VGF's or a baseline's, with the run's
    settings (env, default budget) that serving needs; else ``CheckpointError``."""
    folder = Path(check_checkpoint(checkpoint, flag, whole_run=False, accept=OfflineDataAlgorithm))
    if not (folder / CTOR_ARGS).exists():
        raise CheckpointError(f"{flag} {checkpoint}: no {CTOR_ARGS}: the run's settings (its env, its default "
                              "budget) are missing from this checkpoint")
    return folder


def _spec(checkpoint, module, config, counters: dict, is_vgf: bool) -> PolicySpec:
    low, high, obs_space = env_spaces(config)
    if is_vgf:
        values = config.budget_values(counters.get("grad_steps", 0), counters.get("online_env_steps", 0))
        default_budget, step_size = module.inference_budget.steps, evaluation_step_size(config, values)
    else:
        default_budget, step_size = 0, 0.0
    return PolicySpec(algorithm=config.algo_class.__name__.removeprefix("Baseline"), obs_dim=int(obs_space["shape"][0]),
                      action_low=low, action_high=high, default_budget=int(default_budget),
                      default_step_size=float(step_size), max_budget=MAX_BUDGET if is_vgf else 0,
                      checkpoint=str(Path(checkpoint).expanduser().resolve()), observation_space=obs_space)


def env_spaces(config) -> tuple[np.ndarray, np.ndarray, dict]:
    """The run's env's own action box (before the [-1, 1] rescaling) and its (flattened) observation space."""
    env = config.env(dict(config.env_config or {}))
    try:
        inner, native = env, env.action_space
        while isinstance(inner, gymnasium.Wrapper):
            if isinstance(inner, gymnasium.wrappers.RescaleAction):
                native = inner.env.action_space
            inner = inner.env
        space = env.observation_space
        return (np.asarray(native.low, np.float32), np.asarray(native.high, np.float32),
                {"shape": list(space.shape), "dtype": str(space.dtype)})
    finally:
        env.close()
