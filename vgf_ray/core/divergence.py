"""Stop a diverging run: a loss that is not finite, or Q values beyond what the rewards allow.

With rewards bounded by R and discount gamma < 1, every true Q lies in [-R / (1 - gamma), R / (1 - gamma)]. A critic
far outside that band (``factor`` times it; at least ``factor``, since freshly initialised critics output values of
order 1) has diverged, and more gradient steps only spend time. The monitor watches every gradient step without a
device sync per step (a few tensor ops each); ``check`` syncs once per round and names the first bad metric and step.
"""

from __future__ import annotations

import torch

from vgf_ray.metrics import BC_LOSS, CRITIC_LOSS, CRITIC_Q_MAX, CRITIC_Q_MIN, GRAD_NET_LOSS

FINITE_METRICS = (CRITIC_LOSS, BC_LOSS, GRAD_NET_LOSS)
BOUNDED_METRICS = (CRITIC_Q_MAX, CRITIC_Q_MIN)
NOT_SEEN = 2**62


class DivergenceError(RuntimeError):
    """Training diverged; the message names the metric, its value and the gradient step."""


def q_bound(max_abs_reward: float, discount: float, factor: float | None) -> float | None:
    """``factor * max(R / (1 - gamma), 1)``, or None (no bound) without a factor or with gamma = 1."""
    if factor is None or discount >= 1.0:
        return None
    return factor * max(max_abs_reward / (1.0 - discount), 1.0)


class DivergenceMonitor:
    """First gradient step at which a watched metric went bad, kept on the metrics' device."""

    def __init__(self, bound: float | None):
        self.bound = bound
        self.first_step: dict[str, torch.Tensor] = {}
        self.value: dict[str, torch.Tensor] = {}

    def observe(self, metrics: dict[str, torch.Tensor], step: int) -> None:
        for key, value in metrics.items():
            if key in FINITE_METRICS:
                bad = ~torch.isfinite(value)
            elif key in BOUNDED_METRICS:
                bad = ~torch.isfinite(value) | ((value.abs() > self.bound) if self.bound is not None else False)
            else:
                continue
            if key not in self.first_step:
                self.first_step[key] = torch.full((), NOT_SEEN, dtype=torch.long, device=value.device)
                self.value[key] = torch.zeros((), dtype=value.dtype, device=value.device)
            new = bad & (self.first_step[key] == NOT_SEEN)
            self.first_step[key] = torch.where(new, step, self.first_step[key])
            self.value[key] = torch.where(new, value.detach(), self.value[key])

    def check(self) -> None:
        """Raise ``DivergenceError`` for the earliest bad metric since the monitor was made."""
        if not self.first_step:
            return
        keys = list(self.first_step)
        steps = torch.stack([self.first_step[k] for k in keys]).tolist()
        first = min(range(len(keys)), key=lambda i: steps[i])
        if steps[first] == NOT_SEEN:
            return
        key, value = keys[first], float(self.value[keys[first]])
        if key in BOUNDED_METRICS and value == value and abs(value) != float("inf"):
            why = f"{key} = {value:.4g} is beyond the bound {self.bound:.4g} the rewards and the discount allow"
        else:
            why = f"{key} = {value}"
        raise DivergenceError(f"training diverged at gradient step {steps[first]}: {why}")
