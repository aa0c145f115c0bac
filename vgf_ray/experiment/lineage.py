"""The budget lineage of a run: which configured budget values were in force from which counters.

A plain run has one segment. Under PBT a trial restarts from another trial's checkpoint with mutated values, so
the lineage travels in every checkpoint (``budget_lineage.json``) and the restored trial appends its segment.
``lineage_to_schedule`` turns it into a ``training.budget_schedule`` that replays the trial in one run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from vgf_ray.core.schedule import ENV_STEPS, EXPLORATION_KEYS, GRAD_STEPS, SCHEDULE_KEYS
from vgf_ray.metrics import GRAD_STEPS as GRAD_STEPS_KEY
from vgf_ray.metrics import ITERATION, ONLINE_ENV_STEPS

LINEAGE_JSON = "budget_lineage.json"
TRIAL_ID = re.compile(r"[0-9a-f]{5}_\d{5}")  # Tune's trial id inside a trial folder's name


def read_lineage(folder: Path) -> list[dict[str, Any]]:
    path = folder / LINEAGE_JSON
    return json.loads(path.read_text()) if path.exists() else []


def write_lineage(lineage: list[dict[str, Any]], folder: Path) -> None:
    (folder / LINEAGE_JSON).write_text(json.dumps(lineage, indent=2))


def extend_lineage(lineage: list[dict[str, Any]], values: dict[str, Any], iteration: int, grad_steps: int,
                   env_steps: int) -> list[dict[str, Any]]:
    """The lineage with a new segment if ``values`` (configured budget keys) differ from the last one's; empty for
    an algorithm without a transport budget (the baselines)."""
    if not values:
        return lineage
    values = {k: values[k] for k in SCHEDULE_KEYS}
    if values["exploration_step_size"] is None:  # "same as vgf_lr", written out so a schedule can hold it
        values["exploration_step_size"] = values["vgf_lr"]
    if lineage and lineage[-1]["values"] == values:
        return lineage
    return [*lineage, {ITERATION: iteration, GRAD_STEPS_KEY: grad_steps, ONLINE_ENV_STEPS: env_steps,
                       "values": values}]


def lineage_to_schedule(lineage: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(initial values, budget_schedule)`` replaying the lineage: learner keys change at the gradient step,
    exploration keys at the env step where the segment began (a later segment at the same step wins)."""
    if not lineage:
        raise ValueError("the lineage is empty: the trial never started")
    initial = dict(lineage[0]["values"])
    schedule: dict[str, Any] = {}
    for key in SCHEDULE_KEYS:
        unit = ENV_STEPS if key in EXPLORATION_KEYS else GRAD_STEPS
        counter = ONLINE_ENV_STEPS if unit == ENV_STEPS else GRAD_STEPS_KEY
        points: dict[int, Any] = {}
        for segment in lineage:
            points[int(segment[counter])] = segment["values"][key]
        if len(set(points.values()) | {initial[key]}) > 1:
            schedule[key] = {"unit": unit, "interpolation": "constant",
                             "points": [[step, value] for step, value in sorted(points.items())]}
    return initial, schedule


def trial_id(folder_name: str) -> str:
    """The Tune trial id in a trial folder's name (the name itself where it holds none)."""
    match = TRIAL_ID.search(folder_name)
    return match.group(0) if match else folder_name
