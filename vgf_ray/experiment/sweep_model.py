"""The ``sweep`` section of an experiment file as typed models: its keys, each scheduler's fields, the searcher.

The shape and types are checked here; what depends on the rest of the experiment (a metric the runs report, a
perturbation interval on the evaluation grid, mutable keys, candidate values) is checked by ``tuning.spec``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

from vgf_ray.experiment.value_types import FORBID, Fraction, NonNegInt, PositiveInt

SPACE_KINDS = ("choice", "grid", "uniform", "loguniform", "randint")
SEARCHERS = ("random", "optuna")
TYPE_HELP = "the scheduler (a bare word, e.g. `scheduler: asha`, is this field alone)"
# One search-space entry: {choice: [...]}, {grid: [...]}, {uniform: [low, high]}, {loguniform: ...}, {randint: ...}.
SpaceEntry = Annotated[dict[Literal[SPACE_KINDS], Annotated[list, Field(min_length=1)]],
                       Field(min_length=1, max_length=1)]


class FifoScheduler(BaseModel):
    """Every trial runs to the end."""

    model_config = FORBID
    type: Literal["fifo"] = Field("fifo", description=TYPE_HELP)


class AshaScheduler(BaseModel):
    """Asynchronous successive halving: stops the worse trials at rungs on the evaluation grid."""

    model_config = FORBID
    type: Literal["asha"] = Field(description=TYPE_HELP)
    grace_period: PositiveInt | None = Field(None, description="iterations before the first rung (default: "
                                                               "evaluation.interval); a multiple of it")
    reduction_factor: Annotated[StrictInt, Field(ge=2)] = Field(2, description="1/this of the trials go on")


class PbtScheduler(BaseModel):
    """Population-based training: mutates the transport budget and learning rates between checkpoints."""

    model_config = FORBID
    type: Literal["pbt"] = Field(description=TYPE_HELP)
    perturbation_interval: PositiveInt = Field(description="iterations between perturbations (on evaluations)")
    hyperparam_mutations: dict[str, SpaceEntry] = Field(
        min_length=1, description="key -> {choice: [...]} or a range; keys a budget_schedule can replay")
    quantile_fraction: Fraction = Field(0.25, description="the bottom share copies the top share")
    resample_probability: Fraction = Field(0.25, description="chance a mutation resamples instead of x0.8/x1.2")
    synch: StrictBool = Field(True, description="perturb the whole population at once")


class Pb2Scheduler(BaseModel):
    """PB2: PBT with a Gaussian-process bandit choosing the continuous values."""

    model_config = FORBID
    type: Literal["pb2"] = Field(description=TYPE_HELP)
    perturbation_interval: PositiveInt = Field(description="iterations between perturbations (on evaluations)")
    hyperparam_bounds: dict[str, Annotated[list[StrictFloat], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, description="key -> [low, high]")
    quantile_fraction: Fraction = Field(0.25, description="the bottom share copies the top share")
    synch: StrictBool = Field(True, description="perturb the whole population at once")


Scheduler = Annotated[FifoScheduler | AshaScheduler | PbtScheduler | Pb2Scheduler, Field(discriminator="type")]


class Searcher(BaseModel):
    """Who picks a new trial's values from the search space."""

    model_config = FORBID
    type: Literal[SEARCHERS] = Field("random", description="random, or optuna (the tune extra)")


class SweepSection(BaseModel):
    """search space, scheduler (ASHA, PBT, PB2), searcher, metric (the Sweeps page)."""

    model_config = FORBID
    metric: StrictStr | None = Field(None, description="a reported metric (default: evaluation/best_score where "
                                                       "the env has a score reference, else evaluation/best_success)")
    mode: Literal["max", "min"] = Field("max", description="whether the metric is better high or low")
    num_samples: PositiveInt = Field(1, description="trials (times each grid point)")
    max_concurrent_trials: PositiveInt = Field(1, description="trials running at once")
    stop: dict[str, StrictFloat] = Field({}, description="metric -> threshold: a trial stops on reaching it")
    search_space: dict[str, SpaceEntry] = Field({}, description="dotted experiment key -> {choice|uniform|...: ...}")
    grid: dict[str, Annotated[list, Field(min_length=1)]] = Field({}, description="dotted key -> values, every one")
    scheduler: Scheduler = Field(default_factory=FifoScheduler, description="fifo, asha, pbt or pb2, with fields")
    searcher: Searcher = Field(default_factory=Searcher, description="random or optuna")
    checkpoint_interval: NonNegInt | None = Field(
        None, description="iterations between a trial's checkpoints (default: PBT's interval, else checkpoint_every)")
    start_from: StrictStr | None = Field(None, description="a train checkpoint every trial continues exactly")

    @field_validator("scheduler", mode="before")
    @classmethod
    def _scheduler_word(cls, value: Any) -> Any:
        """``scheduler: asha`` is ``scheduler: {type: asha}``; null is fifo."""
        return _word_is_type(value, "fifo")

    @field_validator("searcher", mode="before")
    @classmethod
    def _searcher_word(cls, value: Any) -> Any:
        return _word_is_type(value, "random")


def _word_is_type(value: Any, default: str) -> Any:
    if value is None:
        return {"type": default}
    return {"type": value} if isinstance(value, str) else value
