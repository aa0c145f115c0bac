"""Hyperparameter sweeps with Ray Tune: an experiment file plus a ``sweep`` section, logged to MLflow.

```yaml
sweep:
  metric: evaluation/best_success      # or evaluation/budget_2/success, evaluation/budget_0/return, ...
  mode: max
  num_samples: 1
  max_concurrent_trials: 1
  grid: {training.vgf_lr: [0.01, 0.05], training.vgf_alpha: [0.2, 0.5]}
```
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vgf_ray.experiment import ExperimentError, build_config, init_ray, resolve_iterations, resolve_learner_gpus

SWEEP_DEFAULTS = {"metric": "evaluation/best_success", "mode": "max", "num_samples": 1, "max_concurrent_trials": 1,
                  "grid": {}}


def sweep_settings(exp: dict, iterations: int) -> dict[str, Any]:
    sweep = {**SWEEP_DEFAULTS, **(exp.get("sweep") or {})}
    unknown = sorted(set(sweep) - set(SWEEP_DEFAULTS))
    if unknown:
        raise ExperimentError(f"sweep: unknown key(s) {unknown}; known: {sorted(SWEEP_DEFAULTS)}")
    if sweep["mode"] not in ("max", "min"):
        raise ExperimentError(f"sweep.mode must be 'max' or 'min', got {sweep['mode']!r}")
    for key, values in sweep["grid"].items():
        if not key.startswith("training."):
            raise ExperimentError(f"sweep.grid: {key!r} must name a training key, e.g. training.vgf_lr")
        if not isinstance(values, list) or not values:
            raise ExperimentError(f"sweep.grid.{key}: expected a non-empty list of values")
    interval = exp["evaluation"].get("interval")
    if sweep["metric"].startswith("evaluation/") and (not interval or iterations % int(interval)):
        raise ExperimentError(f"sweep.metric {sweep['metric']!r} needs an evaluation at the last iteration: make "
                              f"iterations ({iterations}) a multiple of evaluation.interval ({interval})")
    return sweep


def run_sweep(exp: dict) -> tuple[Any, dict[str, Any]]:
    """Run the grid with Tune; returns the ResultGrid and the sweep settings."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    from vgf_ray.data.spec import DatasetSpec, prepare_dataset
    from vgf_ray.rllib import VGF

    config = build_config(exp)
    iterations = resolve_iterations(exp, config)
    sweep = sweep_settings(exp, iterations)
    init_ray(exp)
    resolve_learner_gpus(exp, config)
    # Generate the dataset once here, not concurrently in every trial.
    config.dataset = replace(prepare_dataset(DatasetSpec.from_dict(config.dataset)), generate=False).to_dict()
    for dotted, values in sweep["grid"].items():
        key = dotted.split(".", 1)[1]
        config.training(**{key: values[0]})  # validates the key name
        setattr(config, key, tune.grid_search(values))
    callbacks = []
    if exp["mlflow"].get("tracking_uri"):
        callbacks.append(MLflowLoggerCallback(tracking_uri=exp["mlflow"]["tracking_uri"],
                                              experiment_name=exp["mlflow"].get("experiment", "vgf_ray"),
                                              save_artifact=False))
    out_dir = Path(exp["output_dir"])
    tuner = tune.Tuner(
        VGF,
        param_space=config,
        tune_config=tune.TuneConfig(metric=sweep["metric"], mode=sweep["mode"], num_samples=sweep["num_samples"],
                                    max_concurrent_trials=sweep["max_concurrent_trials"]),
        run_config=tune.RunConfig(name=exp["name"], storage_path=str(out_dir.parent.resolve()),
                                  stop={"training_iteration": iterations}, callbacks=callbacks,
                                  checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True), verbose=1),
    )
    results = tuner.fit()
    out_dir.mkdir(parents=True, exist_ok=True)
    results.get_dataframe().to_csv(out_dir / "sweep_results.csv", index=False)
    return results, sweep
