"""Environments for RLlib EnvRunners: OGBench singletask envs (float32 observations) or any gymnasium id.

Dict/Tuple observation spaces are flattened in gymnasium's order, the order the Minari loader flattens data in; a
bounded Box action space other than [-1, 1] is rescaled to it, as the Minari loader rescales data actions."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench envs with gymnasium)

from vgf_ray.data.action_box import unit_box_env
from vgf_ray.data.ogbench_names import parse_ogbench_name
from vgf_ray.errors import ConfigError
from vgf_ray.metrics import SCORE_REFERENCE

SUCCESS_TIMINGS = ("post", "pre")
ENV_CHOICE_KEYS = ("ogbench", "gym_id")  # exactly one names the env


class VGFEnv(gymnasium.Wrapper):
    """Env class RLlib builds from ``env_config``.

    ``{"ogbench": "cube-single-play[-singletask-taskN-v0]", "success_timing": "post"}`` or ``{"gym_id": ...}``.
    ``success_timing="post"`` judges success on the state after the step, as ogbench 1.1.0 did for the
    published FQL/VGF numbers; ``"pre"`` is ogbench >= 1.2's default (success of the current state).
    """

    def __init__(self, config: dict[str, Any] | None = None):
        config = dict(config or {})
        config.pop(SCORE_REFERENCE, None)  # read by the evaluation, not the env
        extra = dict(config.pop("env_kwargs", {}) or {})
        if set(ENV_CHOICE_KEYS) <= set(config):
            raise ConfigError(f"env_config names two environments (ogbench {config['ogbench']!r} and gym_id "
                              f"{config['gym_id']!r}); keep one")
        if "ogbench" in config:
            timing = config.get("success_timing", "post")
            if timing not in SUCCESS_TIMINGS:
                raise ConfigError(f"env_config.success_timing={timing!r} is not one of {SUCCESS_TIMINGS}")
            env = gymnasium.make(parse_ogbench_name(config["ogbench"]).singletask_env_id,
                                 success_timing=timing, **extra)
        elif "gym_id" in config:
            env = gymnasium.make(config["gym_id"], **extra)
        else:
            raise ConfigError(f"env_config needs 'ogbench' or 'gym_id', got keys {sorted(config)}")
        env = unit_box_env(env, f"env {config}")
        if isinstance(env.observation_space, gymnasium.spaces.Dict | gymnasium.spaces.Tuple):
            env = gymnasium.wrappers.FlattenObservation(env)
        space = env.observation_space
        if not isinstance(space, gymnasium.spaces.Box):
            raise ConfigError(f"env {config}: observation space must be a Box or a Dict/Tuple of Boxes, got {space}")
        super().__init__(env)
        self.observation_space = gymnasium.spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32),
                                                      space.shape, np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return np.asarray(obs, np.float32), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, np.float32), float(reward), terminated, truncated, info
