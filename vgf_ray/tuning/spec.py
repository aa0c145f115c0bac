"""The ``sweep`` section of an experiment: search space, scheduler, searcher, metric and stop criteria.

Everything is checked before any trial starts, and every message names the entry. ``SweepSpec`` then builds
Ray Tune's own objects (``tune.choice``/``uniform``/..., ``ASHAScheduler``, ``PopulationBasedTraining``,
``PB2``, ``OptunaSearch``).

```yaml
sweep:
  metric: evaluation/best_success     # any evaluation/budget_<L>/{success,return}, or a loss
  mode: max
  num_samples: 4
  max_concurrent_trials: 2
  stop: {evaluation/best_success: 0.95}   # extra stop criteria (iterations always bound a trial)
  search_space:                       # dotted experiment keys
    training.vgf_lr: {loguniform: [0.01, 0.1]}
    training.vgf_alpha: {choice: [0.2, 0.5]}
  grid: {training.train_vgf_steps: [1, 3]}   # shorthand for {grid: [...]}
  scheduler: {type: pbt, perturbation_interval: 2,
              hyperparam_mutations: {training.train_vgf_steps: {choice: [0, 1, 2, 3]}}}
  searcher: {type: random}            # or optuna
  start_from: runs/offline/checkpoint # optional: every trial continues this train checkpoint exactly
```

``start_from`` lets a population share one run's first phase (e.g. the offline phase of an offline-to-online
run): each trial resumes the checkpoint (networks, optimizers, replay, counters, RNG) and trains on to
``iterations``, so Tune's own iteration count starts at the checkpoint's.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from vgf_ray.core.schedule import SCHEDULE_KEYS
from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.build import build_config
from vgf_ray.experiment.environment import resolve_env
from vgf_ray.experiment.history import HISTORY_JSON, read_history
from vgf_ray.experiment.model import describe_error
from vgf_ray.experiment.sweep_model import SPACE_KINDS, SweepSection
from vgf_ray.metrics import DEFAULT_BUDGETS, ITERATION, LOSS_METRICS, SCORE_REFERENCE, reported_evaluation_metrics
from vgf_ray.rllib.checkpoint_check import check_checkpoint

SEARCHABLE_SECTIONS = ("training", "evaluation", "dataset", "env", "resources")
# PBT/PB2 mutate the transport budget and learning rates between checkpoints: what a budget schedule can replay.
MUTABLE_KEYS = tuple(f"training.{key}" for key in SCHEDULE_KEYS)
INTEGER_KEYS = {"training.train_vgf_steps", "training.exploration_steps"}


def set_dotted(exp: dict, dotted: str, value: Any) -> None:
    node = exp
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def apply_params(exp: dict, params: dict[str, Any]) -> dict:
    """A copy of the experiment with a trial's sampled (or mutated) values put in."""
    exp = copy.deepcopy(exp)
    for dotted, value in params.items():
        set_dotted(exp, dotted, value)
    return exp


def _check_key(dotted: str, where: str) -> None:
    section = dotted.split(".", 1)[0]
    if dotted != "seed" and (section not in SEARCHABLE_SECTIONS or "." not in dotted):
        raise ExperimentError(f"{where}: {dotted!r} must name an experiment key such as training.vgf_lr or seed "
                              f"(sections: {', '.join(SEARCHABLE_SECTIONS)})")


def _candidates(dotted: str, spec: Any, where: str) -> tuple[str, list]:
    """``(kind, values to check)`` of one search-space entry."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in SPACE_KINDS:
        raise ExperimentError(f"{where}: expected one of {{{': [...], '.join(SPACE_KINDS)}: [...]}}, got {spec!r}")
    kind, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise ExperimentError(f"{where}.{kind}: the space is empty (expected a non-empty list)")
    if kind in ("choice", "grid"):
        return kind, values
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ExperimentError(f"{where}.{kind}: expected [low, high], got {values!r}")
    low, high = values
    if not low < high:
        raise ExperimentError(f"{where}.{kind}: the space is empty (low {low} must be below high {high})")
    if kind == "loguniform" and low <= 0:
        raise ExperimentError(f"{where}.loguniform: low must be > 0, got {low}")
    if kind == "randint":
        if not (isinstance(low, int) and isinstance(high, int)):
            raise ExperimentError(f"{where}.randint: expected integers [low, high), got {values!r}")
        return kind, [low, high - 1]
    if dotted in INTEGER_KEYS:
        raise ExperimentError(f"{where}.{kind}: {dotted} takes whole numbers: use choice, grid or randint")
    return kind, [low, high]


def tune_space(spec: dict) -> Any:
    kind, values = next(iter(spec.items()))
    if kind == "grid":
        return tune.grid_search(values)
    if kind == "choice":
        return tune.choice(values)
    return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[kind](*values)


@dataclass
class SweepSpec:
    metric: str
    mode: str
    num_samples: int
    max_concurrent_trials: int
    stop: dict[str, float]
    search_space: dict[str, dict]
    scheduler: dict[str, Any]
    searcher: str
    checkpoint_interval: int
    mutations: dict[str, dict] = field(default_factory=dict)  # PBT: {key: space}; PB2: {key: {uniform: [lo, hi]}}
    start_from: str | None = None  # a checkpoint every trial resumes
    start_iteration: int = 0  # its iteration: Tune's training_iteration t is the run's iteration start + t

    # ----- Tune objects --------------------------------------------------------------------------------------
    def param_space(self) -> dict[str, Any]:
        space = {key: tune_space(spec) for key, spec in self.search_space.items()}
        for key, spec in self.mutations.items():  # a population starts spread over what PBT/PB2 may mutate
            space.setdefault(key, tune_space(spec))
        return space

    def reuse_actors(self) -> bool:
        """A finished or stopped trial's process runs the next trial (saving its start-up: Ray, torch and RLlib
        imports, seconds a trial), except under PBT/PB2: there a trial paused mid-run is restarted from another's
        checkpoint, which Tune's actor reuse hands a function trial only after it has started afresh."""
        return self.scheduler["type"] not in ("pbt", "pb2")

    def build_scheduler(self, iterations: int):
        kind, s = self.scheduler["type"], self.scheduler
        if kind == "asha":
            return ASHAScheduler(time_attr="training_iteration", max_t=iterations,
                                 grace_period=s["grace_period"], reduction_factor=s["reduction_factor"])
        if kind == "pbt":
            mutations = {k: (v["choice"] if "choice" in v else tune_space(v)) for k, v in self.mutations.items()}
            return PopulationBasedTraining(time_attr="training_iteration",
                                           perturbation_interval=s["perturbation_interval"],
                                           hyperparam_mutations=mutations,
                                           quantile_fraction=s.get("quantile_fraction", 0.25),
                                           resample_probability=s.get("resample_probability", 0.25),
                                           synch=s.get("synch", True))
        if kind == "pb2":
            from ray.tune.schedulers.pb2 import PB2

            bounds = {k: v["uniform"] for k, v in self.mutations.items()}
            return PB2(time_attr="training_iteration", perturbation_interval=s["perturbation_interval"],
                       hyperparam_bounds=bounds, quantile_fraction=s.get("quantile_fraction", 0.25),
                       synch=s.get("synch", True))
        return FIFOScheduler()

    def build_searcher(self):
        if self.searcher != "optuna":
            return None

        return ConcurrencyLimiter(OptunaSearch(), max_concurrent=self.max_concurrent_trials)


def _start_from(path: Any, exp: dict, iterations: int, budgets_interval: int) -> tuple[str | None, int]:
    """``(checkpoint folder, its iteration)`` of ``sweep.start_from``: a complete VGF checkpoint of this task and
    these networks (checked once here, for every trial), at an iteration the trials can continue from."""
    if path is None:
        return None, 0
    where = "sweep.start_from"
    folder = Path(check_checkpoint(str(path), where, build_config(exp), whole_run=True,
                                   trusted_root=exp["output_dir"]))
    history = read_history(folder, sys.maxsize)
    if not history:
        raise ExperimentError(f"{where} {path}: holds no {HISTORY_JSON}; start from a checkpoint that vgf-ray "
                              "train or a trial wrote")
    start = int(history[-1][ITERATION])
    if start >= iterations:
        raise ExperimentError(f"{where} {path}: the checkpoint is at iteration {start}, so iterations ({iterations}) "
                              "leaves the trials nothing to train")
    if start % budgets_interval:
        raise ExperimentError(f"{where} {path}: the checkpoint's iteration {start} is not a multiple of "
                              f"evaluation.interval ({budgets_interval}); trials would evaluate off the sweep's grid")
    return str(folder), start


def _scheduler(raw: dict[str, Any], budgets_interval: int, iterations: int,
               start: int = 0) -> tuple[dict[str, Any], dict[str, dict]]:
    """Checks the scheduler (the validated section's, its defaults filled) over a trial's ``iterations`` Tune
    iterations, which begin after iteration ``start``."""
    kind = raw["type"]
    if kind == "asha":
        _check_asha(raw, budgets_interval)
    if kind not in ("pbt", "pb2"):
        return raw, {}
    _check_perturbation_interval(raw.get("perturbation_interval"), budgets_interval, iterations, start)
    return raw, _mutations(raw, kind)


def _check_asha(raw: dict, budgets_interval: int) -> None:
    """ASHA's rungs fall on evaluations; the grace period defaults to the evaluation interval (filled in place)."""
    raw.setdefault("grace_period", budgets_interval)
    if raw["grace_period"] % budgets_interval:
        raise ExperimentError(f"sweep.scheduler.grace_period: {raw['grace_period']!r} must be a multiple of "
                              f"evaluation.interval ({budgets_interval}) so every rung sees a fresh evaluation")


def _check_perturbation_interval(interval: Any, budgets_interval: int, iterations: int, start: int) -> None:
    """PBT and PB2 perturb on fresh evaluations only, at least once in a trial."""
    where = "sweep.scheduler.perturbation_interval"
    points = [start + p for p in range(interval, iterations + 1, interval)]
    if not points:
        raise ExperimentError(f"{where} {interval} exceeds the iterations a trial trains ({iterations}): "
                              "PBT would never perturb")
    missed = [p for p in points if p % budgets_interval]
    if len(missed) == len(points):
        raise ExperimentError(f"{where} {interval} misses every evaluation (evaluation.interval {budgets_interval}, "
                              f"iterations {iterations}): make it a multiple of evaluation.interval")
    if missed:
        raise ExperimentError(f"{where} {interval} misses the evaluation at iterations {missed[:5]}: make it a "
                              f"multiple of evaluation.interval ({budgets_interval})")


def _mutations(raw: dict, kind: str) -> dict[str, dict]:
    """PBT's ``hyperparam_mutations`` or PB2's ``hyperparam_bounds``, each a key a budget schedule can replay."""
    field_name = "hyperparam_mutations" if kind == "pbt" else "hyperparam_bounds"
    entries = raw[field_name]
    mutations: dict[str, dict] = {}
    for key, spec in entries.items():
        entry = f"sweep.scheduler.{field_name}.{key}"
        if key not in MUTABLE_KEYS:
            raise ExperimentError(f"{entry}: {kind} may mutate only {sorted(MUTABLE_KEYS)} (what a "
                                  "budget_schedule can replay)")
        if kind == "pb2":
            if key in INTEGER_KEYS:
                raise ExperimentError(f"{entry}: PB2 searches continuous values; {key} takes whole numbers "
                                      "(use pbt with a choice list)")
            spec = {"uniform": spec}
        space_kind, _ = _candidates(key, spec, entry)
        if space_kind == "grid":
            raise ExperimentError(f"{entry}: grid is not a mutation; use choice")
        if key in INTEGER_KEYS and space_kind != "choice":
            raise ExperimentError(f"{entry}: {key} takes whole numbers; PBT perturbs numbers by x0.8/x1.2, so "
                                  "give a choice list")
        mutations[key] = spec
    return mutations


def is_scored(exp: dict) -> bool:
    """Whether the experiment's evaluations report a normalized score (its env has a score reference)."""
    resolve_env(exp)
    return SCORE_REFERENCE in exp["env"]


def parse_sweep(exp: dict, iterations: int) -> SweepSpec:
    """Check the ``sweep`` section against the experiment; raises ``ExperimentError`` naming the entry."""
    raw = dict(exp.get("sweep") or {})
    try:
        section = SweepSection.model_validate(raw)  # the shape and types; what follows needs the whole experiment
    except ValidationError as err:
        raise ExperimentError(describe_error(err, {"sweep": raw})) from None
    interval = _evaluation_interval(exp, iterations)
    start_from, start = _start_from(raw.get("start_from"), exp, iterations, interval)
    metric, mode, stop = _objective(raw, exp)
    space = _search_space(raw)
    scheduler, mutations = _scheduler(section.scheduler.model_dump(exclude_none=True), interval, iterations - start,
                                      start)
    searcher = _searcher(section.searcher.type, scheduler["type"], space)
    _check_population(raw, scheduler["type"])
    schedule_keys = {f"training.{k}" for k in (exp["training"].get("budget_schedule") or {})}
    clash = sorted(schedule_keys & set(mutations))
    if clash:
        raise ExperimentError(f"sweep.scheduler: {clash} are both mutated and set by training.budget_schedule; "
                              "drop one")
    if not space and not mutations:
        raise ExperimentError("sweep: nothing to search (give search_space, grid or scheduler mutations)")
    _check_candidates(exp, space, mutations, scheduler["type"])
    return SweepSpec(metric=metric, mode=mode, num_samples=raw.get("num_samples", 1),
                     max_concurrent_trials=raw.get("max_concurrent_trials", 1), stop=stop, search_space=space,
                     scheduler=scheduler, searcher=searcher,
                     checkpoint_interval=_checkpoint_interval(raw, scheduler, exp),
                     mutations=mutations, start_from=start_from, start_iteration=start)


def _evaluation_interval(exp: dict, iterations: int) -> int:
    """Trials are compared on their last evaluation, so the run must end on one."""
    interval = exp["evaluation"].get("interval")
    if not interval or iterations % int(interval):
        raise ExperimentError(f"sweep: trials are compared on their last evaluation: make iterations ({iterations}) "
                              f"a multiple of evaluation.interval ({interval})")
    return int(interval)


def _objective(raw: dict, exp: dict) -> tuple[str, str, dict[str, float]]:
    """``(metric, mode, stop)``: a metric the runs report, its direction, and early-stop thresholds."""
    budgets = list(exp["evaluation"].get("budgets", DEFAULT_BUDGETS))
    scored = is_scored(exp)
    metric = raw.get("metric", "evaluation/best_score" if scored else "evaluation/best_success")
    reported = [*reported_evaluation_metrics(budgets, scored), *LOSS_METRICS]
    if metric not in reported:
        raise ExperimentError(f"sweep.metric {metric!r} is never reported; with evaluation.budgets {budgets} "
                              f"the metrics are: {', '.join(reported)}")
    mode = raw.get("mode", "max")
    stop = raw.get("stop") or {}
    if any(key not in reported for key in stop):
        raise ExperimentError(f"sweep.stop: expected {{metric: threshold}} over reported metrics "
                              f"({', '.join(reported)}), got {stop!r}")
    return metric, mode, stop


def _search_space(raw: dict) -> dict[str, dict]:
    """``grid`` and ``search_space`` as one space (``{dotted key: spec}``), each key given once."""
    space: dict[str, dict] = {dotted: {"grid": values} for dotted, values in (raw.get("grid") or {}).items()}
    for dotted, spec in (raw.get("search_space") or {}).items():
        if dotted in space:
            raise ExperimentError(f"sweep.search_space.{dotted}: also in sweep.grid; give it once")
        space[dotted] = spec
    return space


def _searcher(searcher: str, scheduler: str, space: dict[str, dict]) -> str:
    """The searcher's name; Optuna (an optional extra) only where it can choose the configs."""
    if searcher != "optuna":
        return searcher
    if scheduler in ("pbt", "pb2"):
        raise ExperimentError(f"sweep.searcher: optuna cannot be combined with {scheduler} (Tune's population "
                              "schedulers choose configs themselves)")
    if any("grid" in spec for spec in space.values()):
        raise ExperimentError("sweep.searcher: optuna does not take grid entries; use choice")
    if importlib.util.find_spec("optuna") is None:
        raise ExperimentError("sweep.searcher: optuna is not installed (pip install 'vgf_ray[tune]')")
    return searcher


def _check_population(raw: dict, scheduler: str) -> None:
    """PB2 needs scikit-learn; a population must start all at once."""
    if scheduler == "pb2" and importlib.util.find_spec("sklearn") is None:
        raise ExperimentError("sweep.scheduler: pb2 needs scikit-learn (pip install 'vgf_ray[tune]')")
    if scheduler in ("pbt", "pb2") and raw.get("max_concurrent_trials", 1) < raw.get("num_samples", 1):
        raise ExperimentError(
            f"sweep.max_concurrent_trials {raw.get('max_concurrent_trials', 1)} < num_samples "
            f"{raw.get('num_samples', 1)} with {scheduler}: Tune would create the other trials only after "
            "these finish, so they never join the population. Set it to num_samples; the cluster's resources "
            "decide how many trials run at once, and synch PBT pauses the leaders for the others")


def _check_candidates(exp: dict, space: dict[str, dict], mutations: dict[str, dict], scheduler: str) -> None:
    """Every key and every candidate value must make a valid experiment."""
    mutation_field = "hyperparam_mutations" if scheduler == "pbt" else "hyperparam_bounds"
    for dotted, spec in {**mutations, **space}.items():
        where = f"sweep.search_space.{dotted}" if dotted in space else f"sweep.scheduler.{mutation_field}.{dotted}"
        _check_key(dotted, where)
        _, candidates = _candidates(dotted, spec, where)
        for value in candidates:
            try:
                build_config(apply_params(exp, {dotted: value}))
            except (ValueError, TypeError) as err:
                raise ExperimentError(f"{where}: value {value!r} is not valid: {err}") from err


def _checkpoint_interval(raw: dict, scheduler: dict[str, Any], exp: dict) -> int:
    """Iterations between a trial's checkpoints: given, else PBT's perturbation interval, else the experiment's."""
    interval = raw.get("checkpoint_interval")
    if interval is None:
        interval = scheduler.get("perturbation_interval") or int(exp.get("checkpoint_every") or 0)
    return interval
