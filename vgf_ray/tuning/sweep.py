"""``vgf-ray tune``: run, resume and export Ray Tune sweeps of VGF experiments."""

from __future__ import annotations

import copy
import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from ray import tune

from vgf_ray.data.spec import DatasetSpec, prepare_dataset
from vgf_ray.errors import ExperimentError, RunInterrupted
from vgf_ray.experiment.build import build_config, resolve_iterations
from vgf_ray.experiment.resources import init_ray, resolve_learner_gpus
from vgf_ray.experiment.runner import EXPERIMENT_YAML
from vgf_ray.report import write_report
from vgf_ray.rllib import VGF
from vgf_ray.tuning.interrupt import SweepStopCallback
from vgf_ray.tuning.spec import SweepSpec, parse_sweep
from vgf_ray.tuning.tracking import SweepMLflowCallback
from vgf_ray.tuning.trial import run_trial

SWEEP_RESULTS_CSV = "sweep_results.csv"
SWEEP_SUMMARY_JSON = "sweep_summary.json"


def prepare_sweep(exp: dict) -> tuple[Any, int, SweepSpec]:
    """``(config, iterations, sweep)``, all checked before Ray starts or any trial runs."""
    config = build_config(exp)
    iterations = resolve_iterations(exp, config)
    return config, iterations, parse_sweep(exp, iterations)


def run_sweep(exp: dict, resume: bool = False) -> dict[str, Any]:
    """Run (or ``resume``) the sweep; writes the results table, the report and the MLflow parent run."""
    config, iterations, spec = prepare_sweep(exp)
    sweep_dir = Path(exp["output_dir"])
    if resume and not (sweep_dir / "tuner.pkl").exists():
        raise ExperimentError(f"--resume: {sweep_dir} holds no Tune sweep to resume (no tuner.pkl)")
    init_ray(exp)
    resolve_learner_gpus(exp, config)
    base = copy.deepcopy(exp)
    # Generate the dataset once here, not concurrently in every trial.
    base["dataset"] = replace(prepare_dataset(DatasetSpec.from_dict(config.dataset)), generate=False).to_dict()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / EXPERIMENT_YAML).write_text(yaml.safe_dump(exp, sort_keys=False))  # what --resume reads
    stopper = SweepStopCallback(exp["name"])
    callback = None
    if exp["mlflow"].get("tracking_uri"):
        callback = SweepMLflowCallback(base, sweep_dir, {f"sweep/{k}": json.dumps(v)[:500] for k, v in
                                                         (exp.get("sweep") or {}).items()})
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base_exp=base, iterations=iterations,
                             checkpoint_interval=spec.checkpoint_interval, start_from=spec.start_from,
                             start_iteration=spec.start_iteration, stop_flag=stopper.flag_name),
        VGF.default_resource_request(config),
    )
    callbacks = [stopper] + ([callback] if callback else [])
    tuner = (tune.Tuner.restore(str(sweep_dir), trainable, resume_unfinished=True, resume_errored=True) if resume
             else new_tuner(trainable, spec, sweep_dir, iterations - spec.start_iteration, callbacks))
    with stopper:
        results = tuner.fit()
    summary = write_summary(results, spec, sweep_dir)
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


def new_tuner(trainable, spec: SweepSpec, sweep_dir: Path, horizon: int, callbacks: list) -> tune.Tuner:
    """Tune's Tuner for a new sweep; ``horizon``: a trial's iterations, counted from its start checkpoint."""
    return tune.Tuner(
        trainable,
        param_space=spec.param_space(),
        tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples,
                                    max_concurrent_trials=spec.max_concurrent_trials,
                                    reuse_actors=spec.reuse_actors(),
                                    scheduler=spec.build_scheduler(horizon), search_alg=spec.build_searcher()),
        run_config=tune.RunConfig(name=sweep_dir.name, storage_path=str(sweep_dir.parent),
                                  stop={"training_iteration": horizon, **spec.stop}, callbacks=callbacks, verbose=1),
    )


def write_summary(results, spec: SweepSpec, sweep_dir: Path) -> dict[str, Any]:
    """The results table, the summary (best trial, its metric, config and checkpoint) and the report."""
    results.get_dataframe().to_csv(sweep_dir / SWEEP_RESULTS_CSV, index=False)
    best = results.get_best_result(metric=spec.metric, mode=spec.mode, scope="last")
    summary = {"metric": spec.metric, "mode": spec.mode, "trials": len(results),
               "best_trial": Path(best.path).name if best.path else None,
               "best_metric": best.metrics.get(spec.metric) if best.metrics else None,
               "best_config": best.config, "best_checkpoint": best.checkpoint.path if best.checkpoint else None,
               "errors": len(results.errors)}
    (sweep_dir / SWEEP_SUMMARY_JSON).write_text(json.dumps(summary, indent=2, default=str))
    write_report(sweep_dir)
    return summary
