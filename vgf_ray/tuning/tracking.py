"""MLflow for a sweep, from the driver only: one parent run, one child run per trial.

Trials run in other processes; logging from all of them into one SQLite file invites lock errors, so the
callback logs everything from the Tune driver. Params are logged once per trial (at its first start: PBT
restarts a trial with mutated values, which MLflow would refuse to re-log); the values in force are metrics
(``budget/...``) at every step. The run ids are kept in the sweep folder so ``--resume`` continues the same runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune import Callback

from vgf_ray.experiment.history import RUN_OUTPUT_FILES
from vgf_ray.experiment.runner import CHECKPOINT_DIR
from vgf_ray.experiment.tracking import MLflowTracker
from vgf_ray.tuning.trial import trial_experiment

RUNS_FILE = "mlflow_runs.json"
SWEEP_OUTPUT_FILES = ("sweep_results.csv", "report.html")
# Tune's own bookkeeping in every result: not worth a metric.
TUNE_INTERNAL = {"timestamp", "pid", "done", "time_since_restore", "iterations_since_restore", "time_this_iter_s",
                 "time_total_s", "checkpoint_dir_name", "should_checkpoint"}


class SweepMLflowCallback(Callback):
    def __init__(self, exp: dict, sweep_dir: Path, sweep_params: dict[str, str]):
        self.exp, self.sweep_dir, self.sweep_params = exp, sweep_dir, sweep_params
        self.tracker: MLflowTracker | None = None  # made in setup(): Tune pickles callbacks with the sweep state
        self.runs: dict[str, Any] = {"parent": None, "trials": {}}
        self.live: set[str] = set()  # trials started and not yet finished by this process

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "tracker": None, "live": set()}

    def _save(self) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        (self.sweep_dir / RUNS_FILE).write_text(json.dumps(self.runs, indent=2))

    @property
    def parent_run_id(self) -> str:
        return self.runs["parent"]

    def _connect(self) -> None:
        """The store and the run ids so far (a resumed sweep continues its runs)."""
        mlflow = self.exp["mlflow"]
        self.tracker = MLflowTracker(mlflow["tracking_uri"], mlflow.get("experiment", "vgf_ray"))
        path = self.sweep_dir / RUNS_FILE
        if path.exists():
            self.runs = json.loads(path.read_text())

    def setup(self, **info) -> None:
        self._connect()
        if self.runs["parent"] is None:
            self.runs["parent"] = self.tracker.start(self.exp["name"], self.exp, extra_tags={"sweep": "parent"})
            self.tracker.log_params(self.parent_run_id, self.sweep_params)
            self._save()
        else:
            self.tracker.client.update_run(self.parent_run_id, status="RUNNING")

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.live.add(trial.trial_id)
        if trial.trial_id in self.runs["trials"]:  # a restarted trial (PBT exploit, resume) keeps its run and params
            self.tracker.client.update_run(self.runs["trials"][trial.trial_id], status="RUNNING")
            return
        exp = trial_experiment(self.exp, trial.config, str(trial.local_path), str(trial))
        run_id = self.tracker.start(str(trial), exp, parent_run_id=self.parent_run_id,
                                    extra_tags={"trial_id": trial.trial_id})
        self.runs["trials"][trial.trial_id] = run_id
        self._save()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        run_id = self.runs["trials"].get(trial.trial_id)
        if run_id:
            row = {k: v for k, v in result.items() if k not in TUNE_INTERNAL}
            self.tracker.log_row(run_id, row)

    def _finish_trial(self, trial, status: str) -> None:
        self.live.discard(trial.trial_id)
        run_id = self.runs["trials"].get(trial.trial_id)
        if not run_id:
            return
        folder = Path(trial.local_path)
        checkpoint = folder / CHECKPOINT_DIR
        if not checkpoint.is_dir() and trial.checkpoint is not None:  # stopped early: Tune's latest checkpoint
            checkpoint = Path(trial.checkpoint.path)
        self.tracker.log_outputs(run_id, folder, RUN_OUTPUT_FILES, checkpoint)
        self.tracker.end(run_id, status)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finish_trial(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish_trial(trial, "FAILED")

    def on_experiment_end(self, trials, **info) -> None:
        """Trials started here and not finished when Tune stops (an interrupted sweep) end as KILLED (Tune has
        marked them TERMINATED by now, so the status cannot tell); ``--resume`` reopens them."""
        for trial in trials:
            if trial.trial_id in self.live:
                self._finish_trial(trial, "KILLED")

    def finish_sweep(self, best_metrics: dict[str, float], status: str = "FINISHED") -> None:
        """Called by ``run_sweep`` once the results are written: best trial's numbers and the sweep files."""
        if self.tracker is None:  # after a resume Tune ran its own unpickled copy of this callback
            self._connect()
        self.tracker.log_row(self.parent_run_id, best_metrics)
        self.tracker.log_outputs(self.parent_run_id, self.sweep_dir, SWEEP_OUTPUT_FILES, None)
        self.tracker.end(self.parent_run_id, status)
