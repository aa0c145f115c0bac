"""The run loop shared by ``vgf-ray train`` and every ``vgf-ray tune`` trial.

Build the algorithm, optionally restore it, call ``train()`` ``iterations`` times with progress lines, keep the
history, plots and final evaluation current, checkpoint (RLlib's checkpoint plus the history and the budget
lineage, so a checkpoint alone continues a run and its curve), and hand each iteration to an observer (MLflow for
``train``; Tune's report for a trial).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from vgf_ray.core.divergence import DivergenceError
from vgf_ray.errors import ConfigError, ExperimentError, RunInterrupted
from vgf_ray.experiment.build import build_config, resolve_iterations
from vgf_ray.experiment.history import HISTORY_JSON, RUN_OUTPUT_FILES, read_history, summarize, write_run_outputs
from vgf_ray.experiment.interrupt import StopRequest
from vgf_ray.experiment.lineage import extend_lineage, read_lineage, write_lineage
from vgf_ray.experiment.resources import init_ray, resolve_learner_gpus
from vgf_ray.experiment.schema import algorithm_of
from vgf_ray.experiment.tracking import MLflowRun
from vgf_ray.metrics import (
    BC_LOSS,
    CRITIC_LOSS,
    GRAD_STEPS,
    ITERATION,
    PHASE_DONE,
    SCORE,
    VGF_ALGORITHM,
    budget_key,
    budget_metric,
    headline_stat,
)
from vgf_ray.plots import plot_budget_curve
from vgf_ray.rllib import VGF
from vgf_ray.rllib.checkpoint_check import check_checkpoint
from vgf_ray.rllib.evaluation import evaluation_step_size, run_budget_evaluation, score_reference_of

CHECKPOINT_DIR = "checkpoint"
EXPERIMENT_YAML = "experiment.yaml"

@dataclass(frozen=True)
class ExperimentResult:
    """What a run leaves: its history rows, the final evaluation, the last checkpoint, its folder and its budget
    lineage."""

    history: list[dict]
    final: dict | None
    checkpoint: str | None
    output_dir: str
    lineage: list[dict]


# (algorithm, history so far, lineage) -> None; called after every iteration's row is written.
IterationObserver = Callable[[Any, list[dict], list[dict]], None]


def save_checkpoint(algo, path: Path, history: list[dict], lineage: list[dict]) -> str:
    """RLlib's checkpoint plus the run's history and budget lineage beside it, written atomically: into a staging
    folder first, then renamed over the previous checkpoint, so a crash mid-save leaves that one usable."""
    path = Path(path)
    staging = path.with_name(path.name + ".partial")
    previous = path.with_name(path.name + ".previous")
    shutil.rmtree(staging, ignore_errors=True)
    algo.save_to_path(str(staging.resolve()))
    (staging / HISTORY_JSON).write_text(json.dumps(history))
    write_lineage(lineage, staging)
    if path.exists():
        shutil.rmtree(previous, ignore_errors=True)
        path.rename(previous)
    staging.rename(path)
    shutil.rmtree(previous, ignore_errors=True)
    return str(path.resolve())


def planned_iterations(algo, total: int, extend: bool) -> Iterator[int]:
    """Iteration indices from the algorithm's own count to ``total``; with ``extend`` (``iterations: auto``) on
    until both phases are done, so an online round that collected nothing does not end the run short."""
    i = algo.iteration
    while i < total or (extend and algo.phase() != PHASE_DONE):
        yield i
        i += 1


def _divergence(err: BaseException) -> DivergenceError | None:
    """The learner's ``DivergenceError``, also when Ray wraps it (a remote learner)."""
    for candidate in (getattr(err, "cause", None), err, err.__cause__):
        if isinstance(candidate, DivergenceError):
            return candidate
    return None


def checked_starts(exp: dict, config, from_checkpoint: str | None, resume: str | None,
                   trust_checkpoint: bool) -> tuple[str | None, str | None]:
    """``(from_checkpoint, resume)`` once checked (VGF's or the same baseline's, complete, same task and networks);
    one from outside ``output_dir`` gets a warning that it is a pickle, unless ``trust_checkpoint``."""
    if from_checkpoint and resume:
        raise ExperimentError("use either --from-checkpoint (weights only) or --resume (whole run), not both")
    if from_checkpoint and algorithm_of(exp) != VGF_ALGORITHM:
        raise ExperimentError(f"--from-checkpoint starts VGF's online fine-tuning from trained networks; "
                              f"{exp['algorithm']} trains offline only (--resume continues its run)")
    trusted = None if trust_checkpoint else exp["output_dir"]
    if from_checkpoint:
        from_checkpoint = check_checkpoint(from_checkpoint, "--from-checkpoint", config, whole_run=False,
                                           trusted_root=trusted)
    if resume:
        resume = check_checkpoint(resume, "--resume", config, whole_run=True, trusted_root=trusted)
    return from_checkpoint, resume


class ExperimentRun:
    """One run's state between iterations: the algorithm, its history and budget lineage, the last checkpoint,
    the progress bar and the MLflow run."""

    def __init__(self, exp: dict, config, resume: bool, progress: bool):
        self.exp, self.config, self.progress = exp, config, progress
        self.total = resolve_iterations(exp, config)
        self.out_dir = Path(exp["output_dir"])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / EXPERIMENT_YAML).write_text(yaml.safe_dump(exp, sort_keys=False))
        init_ray(exp)
        resolve_learner_gpus(exp, config)
        self.budgets = list(config.eval_budgets)
        self.online_start = config.offline_steps if config.online_env_steps else None
        self.every = int(exp.get("checkpoint_every") or 0)
        self.tracker = MLflowRun(exp, self.out_dir, resume=resume)
        self.algo = config.build_algo()
        self.history: list[dict] = []
        self.lineage: list[dict] = []
        self.checkpoint: str | None = None
        self.final: dict | None = None
        self.stack = contextlib.ExitStack()

    def start(self, from_checkpoint: str | None, resume: str | None) -> None:
        """Load the starting weights or restore the whole run, extend the lineage, open the progress bar."""
        algo = self.algo
        if from_checkpoint:
            algo.load_module_weights(from_checkpoint)
        if resume:
            self.restore(resume)
        counters = algo.vgf_counters
        self.lineage = extend_lineage(self.lineage, self.config.budget_defaults(), algo.iteration,
                                      counters.grad_steps, counters.online_env_steps)
        write_lineage(self.lineage, self.out_dir)
        self.bar = tqdm(desc=self.exp["name"], unit="it", initial=algo.iteration, total=self.total,
                        disable=not self.progress)
        self.stack.callback(self.bar.close)
        self.stop = self.stack.enter_context(StopRequest())

    def restore(self, resume: str) -> None:
        """Every learner, optimizer, replay and counter from the checkpoint; its history and lineage continued."""
        algo, out_dir = self.algo, self.out_dir
        algo.restore_from_path(resume)
        self.history = read_history(Path(resume), algo.iteration) or read_history(out_dir, algo.iteration)
        self.lineage = read_lineage(Path(resume))
        if len(self.history) < algo.iteration:
            print(f"warning: --resume: neither the checkpoint nor {out_dir} holds the history of the "
                  f"{algo.iteration} iterations before the checkpoint ({len(self.history)} found); history files "
                  "and plots will miss the others", file=sys.stderr)

    def iterate(self, i: int) -> None:
        """One ``train()``: its row in the history, the outputs kept current, progress, a periodic checkpoint."""
        if i >= self.total:  # auto: rounds that collected nothing (EnvRunners lost) are made up for
            self.total = self.bar.total = i + 1
        start = time.perf_counter()
        result = self.train()
        row = summarize(result, self.budgets, self.config.evaluation_interval, self.config.offline_steps)
        row["iteration_s"] = time.perf_counter() - start
        self.history.append(row)
        step_size = evaluation_step_size(self.config, self.algo.budget_values())
        # Kept current, so an interrupted (or Tune-stopped) run leaves its curve and latest evaluation behind.
        self.final = write_run_outputs(self.history, self.budgets, self.out_dir, step_size, self.online_start,
                                       algorithm_of(self.exp))
        self.tracker.log(row)
        self.show(row)
        if self.every and (i + 1) % self.every == 0:
            self.save()

    def train(self) -> dict:
        """``algo.train()``; a learner's divergence is re-raised naming what is kept."""
        try:
            return self.algo.train()
        except Exception as err:
            diverged = _divergence(err)
            if diverged is None:
                raise
            kept = self.checkpoint or "none (no checkpoint was saved before it)"
            raise DivergenceError(f"{diverged}; history and plots are kept in {self.out_dir}; the last good "
                                  f"checkpoint is {kept}") from err

    def show(self, row: dict) -> None:
        """The iteration's headline figures on the progress bar (and as a line, with ``progress``)."""
        stat = headline_stat(row, self.budgets[0])
        shown = {budget_key(b) + ("/score" if stat == SCORE else ""): round(row[budget_metric(b, stat)], 3)
                 for b in self.budgets if budget_metric(b, stat) in row}
        shown.update({k: round(row[k], 3) for k in (CRITIC_LOSS, BC_LOSS) if k in row})
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)
        if self.progress:
            tqdm.write(f"[{self.exp['name']}] it {row[ITERATION]} grad_steps {row[GRAD_STEPS]} "
                       + " ".join(f"{k}={v:.3g}" for k, v in shown.items()))

    def save(self) -> None:
        self.checkpoint = save_checkpoint(self.algo, self.out_dir / CHECKPOINT_DIR, self.history, self.lineage)

    def interrupt(self, i: int) -> None:
        """At the safe point between iterations: checkpoint, then stop naming the way back."""
        self.save()
        name = signal.Signals(self.stop.signum).name
        raise RunInterrupted(f"{name}: stopped after iteration {i + 1} of {self.total} and saved {self.checkpoint}; "
                             f"continue with: vgf-ray train {(self.out_dir / EXPERIMENT_YAML).resolve()} "
                             f"--resume {self.checkpoint}", self.stop.signum)

    def close(self, status: str) -> None:
        self.stack.close()
        self.algo.stop()
        self.tracker.finish(self.out_dir, RUN_OUTPUT_FILES, self.checkpoint, status)

    def result(self) -> ExperimentResult:
        return ExperimentResult(self.history, self.final, self.checkpoint, str(self.out_dir), self.lineage)


def run_experiment(exp: dict, progress: bool = True, from_checkpoint: str | None = None,
                   resume: str | None = None, observer: IterationObserver | None = None,
                   trust_checkpoint: bool = False) -> ExperimentResult:
    """Train for ``iterations`` (``auto``: both phases).

    ``from_checkpoint`` starts from a checkpoint's trained networks (e.g. online fine-tuning of an offline run).
    ``resume`` continues a run exactly: every learner, optimizer, replay, counter and the iteration count come back
    from the checkpoint, and its history (saved in the checkpoint, else in ``output_dir``) is continued up to
    ``iterations``. Values the experiment changes (e.g. a PBT mutation) take effect from the restored step on.
    Either checkpoint is checked first (``checked_starts``).
    """
    config = build_config(exp)  # bad settings fail before anything is written
    from_checkpoint, resume = checked_starts(exp, config, from_checkpoint, resume, trust_checkpoint)
    run = ExperimentRun(exp, config, resume=bool(resume), progress=progress)
    status = "FAILED"
    try:
        run.start(from_checkpoint, resume)
        for i in planned_iterations(run.algo, run.total, extend=exp["iterations"] == "auto"):
            run.iterate(i)
            if observer is not None:
                observer(run.algo, run.history, run.lineage)
            if run.stop.requested and i + 1 < run.total:
                status = "KILLED"
                run.interrupt(i)
        run.save()
        status = "FINISHED"
    finally:
        run.close(status)
    return run.result()


def evaluate_checkpoint(checkpoint: str, budgets: list[int], episodes: int, step_size: float | None,
                        out_dir: str | Path | None = None, alpha: float | None = None,
                        seed: int | None = None) -> dict:
    """Restore a trained VGF and evaluate it at each budget; writes JSON and the budget plot.

    ``step_size`` and ``alpha`` are test-time transport settings (default: the trained run's, its
    ``eval_step_size`` included); ``seed`` picks the episodes (default: the run's), so that checkpoints of
    different runs can be compared on the same ones."""
    if step_size is not None and not (math.isfinite(step_size) and step_size >= 0):
        raise ConfigError(f"evaluate: step size must be a finite number >= 0, got {step_size!r}")
    if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"evaluate: alpha must be a finite number > 0, got {alpha!r}")
    checkpoint_path = Path(check_checkpoint(checkpoint, "evaluate"))
    algo = VGF.from_checkpoint(str(checkpoint_path))
    try:
        values = algo.budget_values()
        if alpha is not None:
            values = {**values, "vgf_alpha": float(alpha)}
        size = step_size if step_size is not None else evaluation_step_size(algo.config, values)
        group = algo.eval_env_runner_group or algo.env_runner_group
        group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
        results = run_budget_evaluation(group, budgets, episodes, size, values,
                                        score_reference=score_reference_of(algo.config),
                                        seed=(algo.config.seed or 0) if seed is None else seed).as_dict()
    finally:
        algo.stop()
    out = Path(out_dir) if out_dir else checkpoint_path.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    plot_budget_curve(results, budgets, out / "evaluation_budget_curve.png", size)
    return results
