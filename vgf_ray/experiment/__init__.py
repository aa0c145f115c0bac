"""Experiments: YAML files -> a VGFConfig -> a run with progress, history, plots, checkpoints and MLflow.

Split by job: ``schema`` (sections, defaults, overrides), ``build`` (config, GPUs, iterations, Ray),
``history`` (rows, files, plots), ``lineage`` (budget values in force over a run), ``tracking`` (MLflow) and
``runner`` (the run loop shared by ``vgf-ray train`` and every Tune trial).
"""

from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.build import build_config, resolve_iterations
from vgf_ray.experiment.history import read_history, summarize, write_history
from vgf_ray.experiment.resources import init_ray, learner_gpus, resolve_learner_gpus
from vgf_ray.experiment.runner import evaluate_checkpoint, run_experiment
from vgf_ray.experiment.schema import apply_override, load_experiment

__all__ = ["ExperimentError", "apply_override", "build_config", "evaluate_checkpoint", "init_ray", "learner_gpus",
           "load_experiment", "read_history", "resolve_iterations", "resolve_learner_gpus", "run_experiment",
           "summarize", "write_history"]
