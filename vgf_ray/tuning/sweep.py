"""``vgf-ray tune``: run, resume and export Ray Tune sweeps of VGF experiments."""

from __future__ import annotations

import copy
import json
import re
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from vgf_ray.experiment.build import build_config, init_ray, resolve_iterations, resolve_learner_gpus
from vgf_ray.experiment.interrupt import RunInterrupted
from vgf_ray.experiment.lineage import LINEAGE_JSON, lineage_to_schedule, read_lineage
from vgf_ray.experiment.runner import EXPERIMENT_YAML
from vgf_ray.experiment.schema import ExperimentError
from vgf_ray.tuning.interrupt import SweepStopCallback
from vgf_ray.tuning.spec import SweepSpec, parse_sweep
from vgf_ray.tuning.trial import run_trial

SWEEP_RESULTS_CSV = "sweep_results.csv"
TRIAL_ID = re.compile(r"[0-9a-f]{5}_\d{5}")  # Tune's trial id inside a trial folder's name
SWEEP_SUMMARY_JSON = "sweep_summary.json"


def prepare_sweep(exp: dict) -> tuple[Any, int, SweepSpec]:
    """``(config, iterations, sweep)``, all checked before Ray starts or any trial runs."""
    config = build_config(exp)
    iterations = resolve_iterations(exp, config)
    return config, iterations, parse_sweep(exp, iterations)


def run_sweep(exp: dict, resume: bool = False) -> dict[str, Any]:
    """Run (or ``resume``) the sweep; writes the results table, the report and the MLflow parent run."""
    from ray import tune

    from vgf_ray.data.spec import DatasetSpec, prepare_dataset
    from vgf_ray.report import write_report
    from vgf_ray.rllib import VGF
    from vgf_ray.tuning.tracking import SweepMLflowCallback

    config, iterations, spec = prepare_sweep(exp)
    sweep_dir = Path(exp["output_dir"])
    if resume and not (sweep_dir / "tuner.pkl").exists():
        raise ExperimentError(f"--resume: {sweep_dir} holds no Tune sweep to resume (no tuner.pkl)")
    horizon = iterations - spec.start_iteration  # Tune counts a trial's iterations from its start checkpoint
    init_ray(exp)
    resolve_learner_gpus(exp, config)
    base = copy.deepcopy(exp)
    # Generate the dataset once here, not concurrently in every trial.
    base["dataset"] = replace(prepare_dataset(DatasetSpec.from_dict(config.dataset)), generate=False).to_dict()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / EXPERIMENT_YAML).write_text(yaml.safe_dump(exp, sort_keys=False))  # what --resume reads
    stopper = SweepStopCallback(exp["name"])
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base_exp=base, iterations=iterations,
                             checkpoint_interval=spec.checkpoint_interval, start_from=spec.start_from,
                             start_iteration=spec.start_iteration, stop_flag=stopper.flag_name),
        VGF.default_resource_request(config),
    )
    callback = None
    if exp["mlflow"].get("tracking_uri"):
        callback = SweepMLflowCallback(base, sweep_dir, {f"sweep/{k}": json.dumps(v)[:500] for k, v in
                                                         (exp.get("sweep") or {}).items()})
    callbacks = [stopper] + ([callback] if callback else [])
    if resume:
        tuner = tune.Tuner.restore(str(sweep_dir), trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=spec.param_space(),
            tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples,
                                        max_concurrent_trials=spec.max_concurrent_trials,
                                        reuse_actors=spec.reuse_actors(),
                                        scheduler=spec.build_scheduler(horizon), search_alg=spec.build_searcher()),
            run_config=tune.RunConfig(name=sweep_dir.name, storage_path=str(sweep_dir.parent),
                                      stop={"training_iteration": horizon, **spec.stop},
                                      callbacks=callbacks, verbose=1),
        )
    with stopper:
        results = tuner.fit()
    results.get_dataframe().to_csv(sweep_dir / SWEEP_RESULTS_CSV, index=False)
    best = results.get_best_result(metric=spec.metric, mode=spec.mode, scope="last")
    summary = {"metric": spec.metric, "mode": spec.mode, "trials": len(results),
               "best_trial": Path(best.path).name if best.path else None,
               "best_metric": best.metrics.get(spec.metric) if best.metrics else None,
               "best_config": best.config, "best_checkpoint": best.checkpoint.path if best.checkpoint else None,
               "errors": len(results.errors)}
    (sweep_dir / SWEEP_SUMMARY_JSON).write_text(json.dumps(summary, indent=2, default=str))
    write_report(sweep_dir)
    if callback is not None:
        metric = summary["best_metric"]
        callback.finish_sweep({"best/" + spec.metric: float(metric)} if isinstance(metric, (int, float)) else {},
                              "KILLED" if stopper.interrupted else "FINISHED")
    if stopper.interrupted:
        name = signal.Signals(stopper.signum).name
        raise RunInterrupted(f"{name}: every running trial saved a checkpoint and the sweep state is in {sweep_dir}; "
                             f"continue with: vgf-ray tune {(sweep_dir / EXPERIMENT_YAML).resolve()} --resume",
                             stopper.signum)
    return summary


def trial_id(folder_name: str) -> str:
    match = TRIAL_ID.search(folder_name)
    return match.group(0) if match else folder_name


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
