"""Replay one trial of a finished sweep in one run: PBT's mutations of its budget become a ``budget_schedule``."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.lineage import LINEAGE_JSON, lineage_to_schedule, read_lineage, trial_id
from vgf_ray.experiment.runner import EXPERIMENT_YAML


def find_trial_folder(sweep_dir: Path, trial: str) -> Path:
    folders = sorted(d for d in sweep_dir.iterdir() if d.is_dir() and (d / LINEAGE_JSON).exists()) \
        if sweep_dir.is_dir() else []
    matches = [d for d in folders if trial in d.name]
    if len(matches) != 1:
        names = ", ".join(d.name for d in folders) or "none"
        what = "no trial folder" if not matches else f"{len(matches)} trial folders"
        raise ExperimentError(f"--export-schedule {trial!r}: {what} in {sweep_dir} match; trials: {names}")
    return matches[0]


def export_schedule(exp: dict, trial: str, out: str | Path | None = None) -> Path:
    """An experiment file that replays a trial's budget (PBT's mutations as ``budget_schedule``) in one
    ``vgf-ray train`` run; returns its path."""
    sweep_dir = Path(exp["output_dir"])
    folder = find_trial_folder(sweep_dir, trial)
    trial_exp = yaml.safe_load((folder / EXPERIMENT_YAML).read_text())
    initial, schedule = lineage_to_schedule(read_lineage(folder))
    replay = copy.deepcopy(trial_exp)
    replay.pop("sweep", None)
    replay["training"].update(initial)
    replay["training"]["budget_schedule"] = {**(replay["training"].get("budget_schedule") or {}), **schedule}
    replay["name"] = f"{exp['name']}-{trial_id(folder.name)}-replay"
    replay["output_dir"] = str(sweep_dir.parent / "{name}")
    replay["mlflow"] = copy.deepcopy(exp["mlflow"])
    path = Path(out) if out else sweep_dir / f"{folder.name}-schedule.yaml"
    path.write_text(f"# Replays trial {folder.name} of sweep {exp['name']} in one run: vgf-ray train {path}\n"
                    + yaml.safe_dump(replay, sort_keys=False))
    return path
