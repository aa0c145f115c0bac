"""The experiment file as typed models (pydantic): one field per key with its type, default and description.

The models check a file's shape and every value's type before anything starts; ``experiment.schema`` fills the
defaults and ``experiment.build`` the cross-key rules. ``training`` takes VGF's keys (``VGFHyperParams`` and
``VGFConfig``'s phases, their descriptions the comments beside their defaults), a baseline's ``bc``/``iql``/``cql``
mapping, and any other RLlib ``training()`` key, which RLlib checks. ``json_schema()`` is what ``vgf-ray schema``
prints for editors and what the configuration reference is built from.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from vgf_ray.core.hparams import BF16_AUTO, HPARAM_CHOICES, VGFHyperParams
from vgf_ray.data.replay import REPLAY_STYLES
from vgf_ray.data.spec import SOURCES, DatasetSpec
from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.field_docs import source_comments
from vgf_ray.experiment.sweep_model import SweepSection
from vgf_ray.experiment.value_types import FORBID, Fraction, NonNegFloat, NonNegInt, PositiveFloat, PositiveInt
from vgf_ray.metrics import ALGORITHMS, BASELINES, DEFAULT_BUDGETS, SCORE_REFERENCE, VGF_ALGORITHM
from vgf_ray.rllib.algorithm import EXPLORATION_SELECTIONS, VGFConfig
from vgf_ray.rllib.shared import OfflineDataConfig

Widths = Annotated[list[PositiveInt], Field(min_length=1)]
Bf16 = StrictBool | Literal[BF16_AUTO]


class RaySection(BaseModel):
    """``ray.init`` for a local Ray (other keys go to ``ray.init`` as given), or a cluster's address."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    num_cpus: PositiveInt = Field(4, description="logical CPUs of a local Ray (more than the cores is fine)")
    num_gpus: NonNegFloat | None = Field(None, description="GPUs of a local Ray (default: what Ray detects)")
    object_store_memory: PositiveInt = Field(1 << 30, description="bytes of the local object store")
    address: StrictStr | None = Field(None, description="join this running cluster instead (e.g. ray://host:10001)")


class EnvSection(BaseModel):
    """The environment acted in; none named: the dataset's own."""

    model_config = FORBID
    ogbench: StrictStr | None = Field(None, description="an OGBench task, e.g. cube-single-play-singletask-task1-v0")
    gym_id: StrictStr | None = Field(None, description="any Gymnasium id, e.g. Hopper-v5")
    success_timing: Literal["post", "pre"] | None = Field(
        None, description="OGBench success on the state after the step (post, the papers') or before it (pre)")
    env_kwargs: dict[str, Any] | None = Field(None, description="keyword arguments of gymnasium.make")
    score_reference: Annotated[list[StrictFloat], Field(min_length=2, max_length=2)] | None = Field(
        None, alias=SCORE_REFERENCE, description="[R_random, R_expert] of the normalized score (default: the "
                                                 "dataset's, for the MuJoCo datasets made here)")


class EvaluationSection(BaseModel):
    """How often, how many paired episodes, at which test-time budgets."""

    model_config = FORBID
    interval: PositiveInt | None = Field(1, description="iterations between evaluations (null: none)")
    episodes: PositiveInt = Field(10, description="paired episodes per budget")
    budgets: list[NonNegInt] = Field(list(DEFAULT_BUDGETS), description="test-time transport steps L evaluated")
    num_env_runners: NonNegInt = Field(0, description="evaluation EnvRunners (0: the local one)")
    step_size: NonNegFloat | None = Field(None, description="test-time step size (default: training.eval_step_size)")


class ResourcesSection(BaseModel):
    """Learners (GPUs) and EnvRunners."""

    model_config = FORBID
    num_learners: NonNegInt = Field(0, description="remote learners (0: one in the driver)")
    num_gpus_per_learner: NonNegFloat | Literal["auto"] = Field(
        "auto", description="auto: one GPU per learner where the cluster has them, else CPU")
    num_env_runners: NonNegInt | None = Field(None, description="remote EnvRunners of the online phase (default 0)")
    num_envs_per_env_runner: PositiveInt | None = Field(None, description="vectorized envs per EnvRunner (default 1)")
    num_cpus_per_env_runner: NonNegFloat | None = Field(None, description="CPUs each EnvRunner takes (default 1)")
    custom_resources_per_env_runner: dict[str, NonNegFloat] | None = Field(
        None, description="Ray custom resources each EnvRunner takes, e.g. {rollout_node: 0.01}")


class MlflowSection(BaseModel):
    """The tracking store and experiment name."""

    model_config = FORBID
    tracking_uri: StrictStr | None = Field("sqlite:///{output_dir}/../mlflow.db",
                                           description="an MLflow store ({output_dir} filled in; null: off)")
    experiment: StrictStr = Field("vgf_ray", description="the MLflow experiment's name")


def _annotation(hint: Any) -> Any:
    """A dataclass field's annotation as the strict type a YAML value must have."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return _annotation(rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]) | None  # noqa: UP007
    if hint is bool:
        return StrictBool
    if hint is int:
        return StrictInt
    if hint is float:
        return StrictFloat
    if hint is str:
        return StrictStr
    if typing.get_origin(hint) is tuple:
        return Widths
    return hint


def _dataclass_fields(cls: type, overrides: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every field of the dataclass ``cls``: its type (``overrides`` first), default and source comment."""
    hints, docs = typing.get_type_hints(cls), source_comments(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        default = list(default) if isinstance(default, tuple) else default
        annotation = overrides.get(f.name, _annotation(hints[f.name]))
        out[f.name] = (annotation, Field(default, description=docs.get(f.name, "")))
    return out


# VGFHyperParams' keys whose type is narrower than their annotation (VGFHyperParams.validate checks the same).
HPARAM_BOUNDS: dict[str, Any] = {
    "num_particles": PositiveInt, "bc_flow_steps": PositiveInt, "num_critics": PositiveInt,
    "train_vgf_steps": NonNegInt, "vgf_lr": NonNegFloat, "value_lr": PositiveFloat, "actor_lr": PositiveFloat,
    "vgf_alpha": PositiveFloat, "softmax_temp": PositiveFloat, "discount": Fraction,
    "tau": Annotated[StrictFloat, Field(gt=0, le=1)], "bf16": Bf16, "acting_bf16": Bf16 | None,
    "grad_clip_norm": PositiveFloat | None,
}
# VGFConfig's own training keys (the phases, evaluation, offline-to-online), each with its type.
PHASE_TYPES: dict[str, Any] = {
    "updates_per_iteration": PositiveInt, "offline_steps": NonNegInt | None, "online_env_steps": NonNegInt,
    "eval_step_size": NonNegFloat | None, "eval_parallel_episodes": PositiveInt | None,
    "exploration_steps": NonNegInt, "exploration_step_size": NonNegFloat | None,
    "exploration_selection": Literal[EXPLORATION_SELECTIONS], "utd_ratio": PositiveFloat, "start_training": NonNegInt,
    "replay_style": Literal[REPLAY_STYLES], "online_fraction": Fraction | None, "online_buffer_capacity": PositiveInt,
    "rollout_steps_per_iteration": PositiveInt, "checkpoint_replay": StrictBool, "async_sampling": StrictBool,
    "budget_schedule": dict[str, Any], "divergence_q_factor": PositiveFloat | None,
}
BASELINE_HELP = "{name}'s own RLlib training() keys and `model` (algorithm: {name} only; see the Baselines page)"


def _training_fields() -> dict[str, tuple[Any, Any]]:
    choices = {key: Literal[words] for key, words in HPARAM_CHOICES.items()}
    out = _dataclass_fields(VGFHyperParams, {**choices, **HPARAM_BOUNDS})
    config = VGFConfig()
    docs = {**source_comments(OfflineDataConfig.init_offline_data), **source_comments(VGFConfig.__init__)}
    for key, annotation in PHASE_TYPES.items():
        default = getattr(config, key)
        out[key] = (annotation, Field(default, description=docs.get(key, "")))
    for name in BASELINES:
        out[name] = (dict[str, Any] | None, Field(None, description=BASELINE_HELP.format(name=name)))
    return out


TrainingSection = create_model(
    "TrainingSection", __config__=ConfigDict(extra="allow", allow_inf_nan=False),
    __doc__="Every VGF knob (the authors' defaults), the phases, and any RLlib training() key.",
    **_training_fields())
DatasetSection = create_model(
    "DatasetSection", __config__=FORBID, __doc__="The offline data: OGBench (generated here) or a local Minari id.",
    **_dataclass_fields(DatasetSpec, {"source": Literal[SOURCES], "num_transitions": PositiveInt | None}))


class Experiment(BaseModel):
    """An experiment file: ``vgf-ray train`` (and ``tune``, with ``sweep``)."""

    model_config = FORBID
    name: StrictStr = Field("vgf", description="the run's name; output_dir may use it as {name}")
    algorithm: Literal[ALGORITHMS] = Field(VGF_ALGORITHM, description="vgf, or a baseline: bc, iql, cql (RLlib's)")
    seed: NonNegInt = Field(0, description="seeds the learner, the EnvRunners and the evaluation episodes")
    iterations: PositiveInt | Literal["auto"] = Field(
        10, description="train() calls; auto: both phases (offline steps, then online env steps)")
    checkpoint_every: NonNegInt | None = Field(0, description="iterations between checkpoints (0 or null: at the end)")
    output_dir: StrictStr = Field("runs/{name}", description="history, plots, checkpoints and evaluation go here")
    ray: RaySection = Field(default_factory=RaySection, description=RaySection.__doc__)
    env: EnvSection = Field(default_factory=EnvSection, description=EnvSection.__doc__)
    dataset: DatasetSection = Field(default_factory=DatasetSection, description=DatasetSection.__doc__)
    training: TrainingSection = Field(default_factory=TrainingSection, description=TrainingSection.__doc__)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection, description=EvaluationSection.__doc__)
    resources: ResourcesSection = Field(default_factory=ResourcesSection, description=ResourcesSection.__doc__)
    mlflow: MlflowSection = Field(default_factory=MlflowSection, description=MlflowSection.__doc__)
    sweep: SweepSection | None = Field(None, description="vgf-ray tune only: " + SweepSection.__doc__)


# Sections whose defaults the loader writes into an experiment; dataset and training are filled by their configs.
FILLED_SECTIONS = ("ray", "evaluation", "resources", "mlflow")
SECTIONS = tuple(Experiment.model_fields)


def experiment_defaults() -> dict[str, Any]:
    """The values an experiment file starts from: each top-level default, and each filled section's set defaults
    (a key whose default is null stays absent: its reader's default applies)."""
    defaults: dict[str, Any] = {"env": {}, "dataset": {}, "training": {}}
    for name, info in Experiment.model_fields.items():
        if name in FILLED_SECTIONS:
            section = info.default_factory()
            defaults[name] = {k: v for k, v in section.model_dump(by_alias=True).items() if v is not None}
        elif name not in defaults and info.default is not None:
            defaults[name] = info.default
    return defaults


def json_schema() -> dict[str, Any]:
    """The experiment file's JSON Schema (draft 2020-12), for editors and the configuration reference."""
    schema = Experiment.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "vgf_ray experiment"
    return schema


def check_experiment(exp: dict, source: str | None = None) -> None:
    """Raise ``ExperimentError`` naming the file (``source``), the key, what was expected and what was given."""
    try:
        Experiment.model_validate(exp)
    except ValidationError as err:
        raise ExperimentError(describe_error(err, exp, source)) from None


def describe_error(err: ValidationError, data: dict, source: str | None = None) -> str:
    """The first invalid key as one line: pydantic's alternatives of a union joined by "or"."""
    errors = err.errors(include_url=False)
    where = _data_path(errors[0], data)
    same = [e for e in errors if _data_path(e, data) == where]
    key = ".".join(map(str, where)) or "experiment"
    prefix = f"{source}: " if source else ""
    kind = same[0]["type"]
    if kind == "extra_forbidden":
        known = _known_keys(where[:-1], data)
        word = "section" if len(where) == 1 else "key"
        return f"{prefix}{key}: unknown {word}" + (f"; {word}s: {', '.join(known)}" if known else "")
    if kind == "missing":
        return f"{prefix}{key}: required, but not given"
    if kind == "union_tag_invalid":
        return f"{prefix}{key}.type: {same[0]['msg']}"
    expected = " or ".join(dict.fromkeys(_plain(e["msg"]) for e in same))
    return f"{prefix}{key}: expected {expected}, got {_short(same[0]['input'])}"


PLAIN_WORDS = {"a valid integer": "an integer", "a valid boolean": "true or false", "a valid number": "a number",
               "a valid string": "a string", "a valid dictionary": "a mapping", "a valid list": "a list",
               "greater than or equal to ": "a value >= ", "greater than ": "a value > ",
               "less than or equal to ": "a value <= ", "None": "null"}


def _plain(msg: str) -> str:
    """pydantic's "Input should be a valid integer" as "an integer"."""
    msg = msg.removeprefix("Input should be ")
    if (short := re.match(r"(List|Dictionary) should have at least (\d+) items?", msg)) is not None:
        kind = "list" if short[1] == "List" else "mapping"
        return f"a non-empty {kind}" if short[2] == "1" else f"a {kind} of at least {short[2]} items"
    for words, plain in PLAIN_WORDS.items():
        if msg.startswith(words):
            return plain + msg[len(words):]
    return msg


def _known_keys(path: tuple, data: Any) -> list[str]:
    """The keys the model at ``path`` takes (a union of models: the one the data's ``type`` picks); empty where
    ``path`` is not a model."""
    model: Any = Experiment
    for part in path:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        data = data.get(part) if isinstance(data, dict) else None
        models = [a for a in _flat_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) > 1 and isinstance(data, dict):  # a union told apart by its "type" field
            models = [m for m in models if data.get("type") in typing.get_args(m.model_fields["type"].annotation)]
        if len(models) != 1:
            return []
        model = models[0]
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _data_path(error: dict, data: Any) -> tuple:
    """The error's location in the given data: pydantic's union-member tags (not keys of the data) left out."""
    path, node = [], data
    for part in error["loc"]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif error["type"] == "missing" and part == error["loc"][-1]:
            pass
        else:
            continue
        path.append(part)
    return tuple(path)


def _flat_args(annotation: Any) -> list[Any]:
    """The types inside an annotation: ``Annotated[A | B, ...] | None`` -> ``[A, B, NoneType]``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        return _flat_args(args[0])
    return [a for arg in args for a in _flat_args(arg)] if args else [annotation]


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
