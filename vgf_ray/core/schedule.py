"""Schedules of the transport budget (and learning rates) over gradient or environment steps.

``training.budget_schedule`` maps a key to points ``[[step, value], ...]`` (sorted by step), in short form or as
``{unit: grad_steps|env_steps, interpolation: constant|linear, points: [...]}``. Before the first point the
configured value applies; ``constant`` holds each value until the next point, ``linear`` interpolates between
points (integer keys are rounded down) and holds the last value. Plain Python, no Ray: the learner applies it at
every gradient step, the algorithm at every EnvRunner round.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from vgf_ray.errors import InputError

GRAD_STEPS, ENV_STEPS = "grad_steps", "env_steps"
UNITS = (GRAD_STEPS, ENV_STEPS)
INTERPOLATIONS = ("constant", "linear")

# key -> (integer valued, lowest allowed value, lowest value is allowed itself)
SCHEDULE_KEYS: dict[str, tuple[bool, float, bool]] = {
    "train_vgf_steps": (True, 0, True),
    "vgf_lr": (False, 0.0, True),
    "vgf_alpha": (False, 0.0, False),
    "exploration_steps": (True, 0, True),
    "exploration_step_size": (False, 0.0, True),
    "value_lr": (False, 0.0, False),
    "actor_lr": (False, 0.0, False),
}
EXPLORATION_KEYS = ("exploration_steps", "exploration_step_size")  # applied on EnvRunners: may count env steps
LEARNER_KEYS = tuple(k for k in SCHEDULE_KEYS if k not in EXPLORATION_KEYS)
WHERE = "training.budget_schedule"


class ScheduleError(InputError):
    """A schedule entry that cannot be applied; the message names the entry."""


def check_value(key: str, value: Any, where: str) -> float | int:
    """A schedule (or PBT) value for ``key``, range-checked; raises ``ScheduleError`` naming ``where``."""
    integer, low, inclusive = SCHEDULE_KEYS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScheduleError(f"{where}: value {value!r} is not a number")
    if integer and value != int(value):
        raise ScheduleError(f"{where}: {key} takes whole numbers, got {value!r}")
    if value < low or (value == low and not inclusive):
        bound = ">=" if inclusive else ">"
        raise ScheduleError(f"{where}: {key} must be {bound} {low}, got {value!r}")
    return int(value) if integer else float(value)


@dataclass(frozen=True)
class KeySchedule:
    """One key's points over one step counter."""

    key: str
    unit: str
    interpolation: str
    steps: tuple[int, ...]
    values: tuple[float | int, ...]

    @classmethod
    def parse(cls, key: str, spec: Any) -> KeySchedule:
        where = f"{WHERE}.{key}"
        if key not in SCHEDULE_KEYS:
            raise ScheduleError(f"{where}: unknown key {key!r}; schedulable keys: {sorted(SCHEDULE_KEYS)}")
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - {"unit", "interpolation", "points"})
            if unknown:
                raise ScheduleError(f"{where}: unknown field(s) {unknown}; fields: interpolation, points, unit")
            unit, interpolation, points = spec.get("unit", GRAD_STEPS), spec.get("interpolation", "constant"), \
                spec.get("points")
        else:
            unit, interpolation, points = GRAD_STEPS, "constant", spec
        if unit not in UNITS:
            raise ScheduleError(f"{where}.unit: {unit!r} is not one of {UNITS}")
        if unit == ENV_STEPS and key not in EXPLORATION_KEYS:
            raise ScheduleError(f"{where}.unit: env_steps is only for {EXPLORATION_KEYS} (the learner counts "
                                "gradient steps)")
        if interpolation not in INTERPOLATIONS:
            raise ScheduleError(f"{where}.interpolation: {interpolation!r} is not one of {INTERPOLATIONS}")
        steps, values = _points(key, points, where)
        return cls(key, unit, interpolation, tuple(steps), tuple(values))

    def value_at(self, step: int, default: float | int) -> float | int:
        i = bisect.bisect_right(self.steps, step) - 1
        if i < 0:
            return default
        if self.interpolation == "constant" or i == len(self.steps) - 1:
            return self.values[i]
        s0, s1, v0, v1 = self.steps[i], self.steps[i + 1], self.values[i], self.values[i + 1]
        value = v0 + (v1 - v0) * (step - s0) / (s1 - s0)
        return int(value) if SCHEDULE_KEYS[self.key][0] else value


class BudgetSchedule:
    """All scheduled keys; ``values_at`` gives the value of every key at the given counters."""

    def __init__(self, spec: dict[str, Any] | None = None):
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise ScheduleError(f"{WHERE}: expected a mapping of key -> points, got {type(spec).__name__}")
        self.keys = {key: KeySchedule.parse(key, value) for key, value in spec.items()}

    def __bool__(self) -> bool:
        return bool(self.keys)

    def values_at(self, defaults: dict[str, Any], grad_steps: int, env_steps: int = 0) -> dict[str, Any]:
        """Every schedulable key's value at these counters: the scheduled one, else the configured ``defaults``.

        ``exploration_step_size: None`` follows the (scheduled) transport step size ``vgf_lr``."""
        out = {}
        for key in SCHEDULE_KEYS:
            schedule = self.keys.get(key)
            out[key] = defaults[key] if schedule is None else schedule.value_at(
                env_steps if schedule.unit == ENV_STEPS else grad_steps, defaults[key])
        if out["exploration_step_size"] is None:
            out["exploration_step_size"] = out["vgf_lr"]
        return out


def _points(key: str, points: Any, where: str) -> tuple[list[int], list[float | int]]:
    """The ``[step, value]`` points of one key's schedule, steps strictly increasing, values checked."""
    if not isinstance(points, (list, tuple)) or not points:
        raise ScheduleError(f"{where}: expected a non-empty list of [step, value] points, got {points!r}")
    steps, values = [], []
    for i, point in enumerate(points):
        entry = f"{where}[{i}]"
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ScheduleError(f"{entry}: expected [step, value], got {point!r}")
        step, value = point
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ScheduleError(f"{entry}: step must be an integer >= 0, got {step!r}")
        if steps and step <= steps[-1]:
            raise ScheduleError(f"{entry}: step {step} does not come after the previous entry's step "
                                f"{steps[-1]} (points must be sorted by step, each step once)")
        steps.append(step)
        values.append(check_value(key, value, entry))
    return steps, values
