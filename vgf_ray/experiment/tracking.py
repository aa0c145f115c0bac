"""MLflow tracking of runs and sweeps from one process (SQLite stores tolerate one writer best).

``MLflowTracker`` wraps ``MlflowClient`` so one process can hold several runs at once: ``vgf-ray train`` holds one,
``vgf-ray tune`` holds the sweep's parent run and one child run per trial (tag ``mlflow.parentRunId``), all logged
from the driver. Params are the resolved experiment, logged once; metrics are the history rows; tags say what
was trained on which code; artifacts are the run's plots, history, final evaluation and final checkpoint.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

from vgf_ray import __version__
from vgf_ray.experiment.schema import algorithm_of
from vgf_ray.metrics import GRAD_STEPS

PARAM_SECTIONS = ("training", "dataset", "evaluation", "env", "resources")
RUN_ID_FILE = "mlflow_run_id.txt"
PARENT_RUN_TAG = "mlflow.parentRunId"


@functools.cache
def git_commit() -> str:
    """The commit of the vgf_ray source tree (``+dirty`` with local changes), or ``unknown`` outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def run_tags(exp: dict) -> dict[str, str]:
    """What a team filters runs by: task, dataset size and seed, run seed, code version."""
    env, dataset = exp.get("env", {}), exp.get("dataset", {})
    return {"task": str(env.get("ogbench") or env.get("name") or dataset.get("name", "")),
            "dataset_name": str(dataset.get("name", "")),
            "dataset_size": str(dataset.get("num_transitions", "")),
            "dataset_seed": str(dataset.get("seed", "")),
            "seed": str(exp.get("seed", "")),
            "algorithm": algorithm_of(exp),
            "git_commit": git_commit(),
            "vgf_ray_version": __version__}


def run_params(exp: dict) -> dict[str, str]:
    """The resolved experiment as flat ``section/key`` params (MLflow caps values at 6000 characters)."""
    params = {f"{section}/{key}": value for section in PARAM_SECTIONS for key, value in exp.get(section, {}).items()}
    params.update({"seed": exp.get("seed"), "iterations": exp.get("iterations"),
                   "algorithm": algorithm_of(exp)})
    return {k: str(v)[:500] for k, v in params.items()}


def row_metrics(row: dict) -> dict[str, float]:
    return {k.replace("/", "."): float(v) for k, v in row.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class MLflowTracker:
    """Runs of one MLflow experiment, addressed by run id (no global active run)."""

    def __init__(self, tracking_uri: str, experiment: str):
        import mlflow

        os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
        self.client = mlflow.MlflowClient(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_root(
                tracking_uri, experiment))

    def start(self, name: str, exp: dict, parent_run_id: str | None = None, extra_tags: dict | None = None) -> str:
        """A new run with the experiment's tags and params (logged once, here)."""
        tags = {**run_tags(exp), **(extra_tags or {}), "mlflow.runName": name}
        if parent_run_id:
            tags[PARENT_RUN_TAG] = parent_run_id
        run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id
        self.log_params(run_id, run_params(exp))
        return run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's batch limit
            self.client.log_batch(run_id, params=items[i:i + 100])

    def log_row(self, run_id: str, row: dict) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(row.get(GRAD_STEPS, 0))
        metrics = [Metric(k, v, now, step) for k, v in row_metrics(row).items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i:i + 1000])

    def log_outputs(self, run_id: str, out_dir: Path, files: tuple[str, ...], checkpoint: str | Path | None) -> None:
        for name in files:
            if (out_dir / name).exists():
                self.client.log_artifact(run_id, str(out_dir / name))
        if checkpoint and Path(checkpoint).is_dir():
            self.client.log_artifacts(run_id, str(checkpoint), artifact_path="checkpoint")

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


def artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store go beside the database (MLflow's default is ./mlruns of the working dir)."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts" / experiment).resolve().as_uri()
    return None


class MLflowRun:
    """The MLflow run of one ``vgf-ray train``; a no-op when ``mlflow.tracking_uri`` is empty.

    A resumed experiment continues the run whose id its output folder recorded."""

    def __init__(self, exp: dict, out_dir: Path, resume: bool = False):
        uri = exp["mlflow"].get("tracking_uri")
        self.tracker = MLflowTracker(uri, exp["mlflow"].get("experiment", "vgf_ray")) if uri else None
        if self.tracker is None:
            return
        id_file = out_dir / RUN_ID_FILE
        if resume and id_file.exists():
            self.run_id = id_file.read_text().strip()
            self.tracker.client.update_run(self.run_id, status="RUNNING")
            return
        self.run_id = self.tracker.start(exp["name"], exp)
        id_file.write_text(self.run_id)

    def log(self, row: dict) -> None:
        if self.tracker:
            self.tracker.log_row(self.run_id, row)

    def finish(self, out_dir: Path, files: tuple[str, ...], checkpoint: str | None, status: str = "FINISHED") -> None:
        if self.tracker:
            self.tracker.log_outputs(self.run_id, out_dir, files, checkpoint)
            self.tracker.end(self.run_id, status)
