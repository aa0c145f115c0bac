"""Small local Minari datasets for the tests: random episodes of a Box-observation env or of a Dict-observation one."""

from __future__ import annotations

import gymnasium
import numpy as np


class DictObservationEnv(gymnasium.Env):
    """A 2-D point that moves by its action, observed as ``{"position", "goal"}`` (like goal-conditioned robotics)."""

    observation_space = gymnasium.spaces.Dict({"position": gymnasium.spaces.Box(-10, 10, (2,), np.float32),
                                               "goal": gymnasium.spaces.Box(-10, 10, (2,), np.float32)})
    action_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def step(self, action):
        self.position = np.clip(self.position + 0.1 * np.asarray(action, np.float32), -10, 10)
        distance = float(np.linalg.norm(self.position - self.goal))
        return self._obs(), -distance, distance < 0.05, False, {}

    def _obs(self):
        return {"position": self.position.copy(), "goal": self.goal.copy()}


def episode_buffer(env: gymnasium.Env, seed: int, steps: int, terminated: bool):
    """One random episode of ``steps`` steps ending in a termination or (else) a truncation."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [obs], [], []
    for _ in range(steps):
        action = env.action_space.sample()
        obs, reward, _, _, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
    terminations = [False] * steps
    truncations = [False] * steps
    (terminations if terminated else truncations)[-1] = True
    if isinstance(observations[0], dict):
        observations = {key: np.array([o[key] for o in observations]) for key in observations[0]}
    else:
        observations = np.array(observations)
    return EpisodeBuffer(id=seed, observations=observations, actions=np.array(actions), rewards=rewards,
                         terminations=terminations, truncations=truncations, infos={})


def make_minari_dataset(dataset_id: str, env: gymnasium.Env, lengths: list[tuple[int, bool]]) -> str:
    """Create ``dataset_id`` under ``MINARI_DATASETS_PATH`` from episodes ``(steps, terminated)``."""
    import minari

    env.action_space.seed(0)
    buffers = [episode_buffer(env, i, steps, terminated) for i, (steps, terminated) in enumerate(lengths)]
    minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=env.observation_space,
                                       action_space=env.action_space, algorithm_name="random")
    return dataset_id
