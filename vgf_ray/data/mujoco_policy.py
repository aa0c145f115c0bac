"""A SAC actor (tanh-squashed Gaussian MLP) rebuilt from plain ``.npz`` weights, to act without its trainer.

The arrays are the trainer's own layer weights under fixed names, so loading needs neither stable-baselines3 nor
pickle. Actions are sampled with a numpy ``Generator`` so a dataset's rows depend only on its seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vgf_ray.data.transitions import DatasetError

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # the trainer's clamp on the actor's log-std
HIDDEN_KEYS = ("hidden_0", "hidden_1")
WEIGHT_KEYS = tuple(f"{name}.{part}" for name in (*HIDDEN_KEYS, "mu", "log_std") for part in ("weight", "bias"))


class SquashedGaussianActor:
    """``a = tanh(mu(s) + std(s) * noise)``: the actor SAC trains; ``noise = 0`` is its deterministic action."""

    def __init__(self, weights: dict[str, np.ndarray], source: str = "actor"):
        missing = [k for k in WEIGHT_KEYS if k not in weights]
        if missing:
            raise DatasetError(f"{source}: not a behavior-policy file (missing {missing})")
        self.layers = {k: np.asarray(weights[k], dtype=np.float64) for k in WEIGHT_KEYS}
        self.obs_dim = self.layers["hidden_0.weight"].shape[1]
        self.act_dim = self.layers["mu.weight"].shape[0]

    @classmethod
    def load(cls, path: str | Path) -> SquashedGaussianActor:
        try:
            with np.load(path, allow_pickle=False) as stored:
                weights = {k: stored[k] for k in stored.files}
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot be read as a behavior-policy file ({type(err).__name__})") from err
        return cls(weights, source=str(path))

    def save(self, path: str | Path) -> None:
        np.savez(path, **{k: v.astype(np.float32) for k, v in self.layers.items()})

    def distribution(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the pre-tanh Gaussian for a batch of observations."""
        h = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        for name in HIDDEN_KEYS:
            h = np.maximum(h @ self.layers[f"{name}.weight"].T + self.layers[f"{name}.bias"], 0.0)
        mean = h @ self.layers["mu.weight"].T + self.layers["mu.bias"]
        log_std = np.clip(h @ self.layers["log_std.weight"].T + self.layers["log_std.bias"], LOG_STD_MIN, LOG_STD_MAX)
        return mean, np.exp(log_std)

    def act(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions in [-1, 1] for a batch of observations: sampled with ``rng``, the mean action without one."""
        mean, std = self.distribution(obs)
        if rng is not None:
            mean = mean + std * rng.standard_normal(mean.shape)
        return np.tanh(mean).astype(np.float32)
