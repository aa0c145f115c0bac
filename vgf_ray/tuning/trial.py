"""One Tune trial: the same run loop as ``vgf-ray train``, reporting to Tune and checkpointing for PBT.

The trial's folder gets what a ``train`` run writes (history, plots, final evaluation, checkpoint, budget
lineage). A trial restored by Tune (PBT exploit, ``--resume``) rebuilds the algorithm from its — possibly
mutated — config and restores the checkpoint Tune hands it: counters, replay, RNG and history come with it, and
the lineage records from which step the new values apply. MLflow is logged by the driver, not here.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ray import tune

from vgf_ray.experiment.history import tune_result
from vgf_ray.experiment.runner import run_experiment, save_checkpoint
from vgf_ray.metrics import ITERATION
from vgf_ray.tuning.interrupt import TrialStopCheck, wait_to_be_stopped
from vgf_ray.tuning.spec import apply_params


class TuneReporter:
    """Observer of the run loop: reports every iteration, with a checkpoint every ``interval`` iterations after
    ``start`` (where Tune's count begins, so checkpoints fall on PBT's perturbation points), at the end, and when
    the sweep is being interrupted (then the trial waits for Tune to stop it)."""

    def __init__(self, budgets: list[int], interval: int, total: int, start: int = 0,
                 stop_check: TrialStopCheck | None = None):
        self.budgets, self.interval, self.total, self.start = budgets, interval, total, start
        self.stop_check = stop_check

    def __call__(self, algo, history: list[dict], lineage: list[dict]) -> None:
        metrics = tune_result(history, self.budgets)
        iteration = history[-1][ITERATION]
        stopping = self.stop_check is not None and iteration < self.total and self.stop_check.requested()
        due = (self.interval and (iteration - self.start) % self.interval == 0) or iteration == self.total
        if not (due or stopping):
            tune.report(metrics)
            return
        folder = Path(tempfile.mkdtemp(prefix="vgf-trial-ckpt-"))
        try:
            save_checkpoint(algo, folder, history, lineage)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if stopping:
            wait_to_be_stopped()


def trial_experiment(base_exp: dict, params: dict[str, Any], trial_dir: str, trial_name: str) -> dict:
    """The experiment a trial runs: the sweep's, with its values, writing into its own folder, no MLflow."""
    exp = apply_params(base_exp, params)
    exp.pop("sweep", None)
    exp.update(name=trial_name, output_dir=trial_dir)
    exp["mlflow"] = {**exp["mlflow"], "tracking_uri": None}
    return exp


def run_trial(params: dict[str, Any], base_exp: dict, iterations: int, checkpoint_interval: int,
              start_from: str | None = None, start_iteration: int = 0, stop_flag: str | None = None) -> None:
    """Tune's function trainable (bound with ``tune.with_parameters``); a new trial resumes ``start_from``;
    ``stop_flag`` names the driver's stop-request actor (``tuning.interrupt``)."""
    context = tune.get_context()
    exp = trial_experiment(base_exp, params, context.get_trial_dir(), context.get_trial_name())
    exp["iterations"] = iterations
    reporter = TuneReporter(list(exp["evaluation"]["budgets"]), checkpoint_interval, iterations, start_iteration,
                            TrialStopCheck(stop_flag))
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        run_experiment(exp, progress=False, resume=start_from, observer=reporter, trust_checkpoint=True)
        return
    with checkpoint.as_directory() as folder:
        run_experiment(exp, progress=False, resume=folder, observer=reporter, trust_checkpoint=True)
