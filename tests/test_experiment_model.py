"""The experiment file's typed model: every shipped file fits it, its JSON Schema agrees, errors name the file and
the key, every key is described, and its defaults are the ones a run uses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from vgf_ray.cli import main
from vgf_ray.core.hparams import VGFHyperParams
from vgf_ray.errors import ExperimentError
from vgf_ray.experiment.model import PHASE_TYPES, Experiment, json_schema
from vgf_ray.experiment.schema import load_experiment
from vgf_ray.rllib.algorithm import VGFConfig

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "tune_configs").rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_file_fits_the_model_and_its_schema(path, validator):
    load_experiment(path)  # raises naming the key otherwise
    assert list(validator.iter_errors(yaml.safe_load(path.read_text()) or {})) == []


def test_schema_command_prints_a_schema_that_rejects_a_bad_value(capsys, validator):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schema()
    assert not validator.is_valid({"training": {"num_particles": 8, "bf16": "auto"}, "sweep": {"scheduler": "asha"}})
    bad = list(validator.iter_errors({"training": {"num_particles": "8"}}))
    assert [list(e.absolute_path) for e in bad] == [["training", "num_particles"]]


@pytest.mark.parametrize(("text", "expected"), [
    ("training: {vgf_lr: .nan}", "training.vgf_lr: expected a finite number, got nan"),
    ("training: {train_q_agg: max}", "training.train_q_agg: expected 'min' or 'mean', got 'max'"),
    ("training: {hidden_dims: [256, 0]}", "training.hidden_dims.1: expected a value >= 1, got 0"),
    ("evaluation: {budgets: [0, 1], episodes: true}", "evaluation.episodes: expected an integer, got True"),
    ("env: {gym: Hopper-v5}", "env.gym: unknown key; keys: env_kwargs, gym_id, ogbench, score_reference"),
    ("iterations: forever", "iterations: expected an integer or 'auto', got 'forever'"),
    ("sweep: {scheduler: {type: pbt}}", "sweep.scheduler.perturbation_interval: required, but not given"),
    ("sweep: {scheduler: {type: asha, grace: 2}}", "sweep.scheduler.grace: unknown key"),
])
def test_errors_name_the_file_the_key_and_what_was_expected(tmp_path, text, expected):
    path = tmp_path / "exp.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    assert str(err.value).startswith(f"{path}: {expected}")


def test_set_overrides_are_checked_the_same_way(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: x\n")
    with pytest.raises(ExperimentError, match=r"exp.yaml with --set overrides: training.num_particles: expected an "
                                              r"integer, got '5x'"):
        load_experiment(path, ["training.num_particles=5x"])
    assert load_experiment(path, ["training.num_particles=5"])["training"]["num_particles"] == 5


def test_rllib_training_keys_pass_to_rllib(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("training: {train_batch_size_per_learner: 64}\n")
    assert load_experiment(path)["training"]["train_batch_size_per_learner"] == 64


def test_every_key_has_a_one_line_description():
    schema = json_schema()
    defs = schema["$defs"]

    def described(prop: dict) -> bool:  # a section's description sits on its definition
        return bool(prop.get("description") or "$ref" in prop and defs[prop["$ref"].rsplit("/", 1)[1]]["description"])

    undescribed = [f"{model.get('title')}.{key}" for model in [schema, *defs.values()]
                   for key, prop in model.get("properties", {}).items() if not described(prop)]
    assert undescribed == []


def test_training_defaults_are_the_ones_a_run_uses():
    fields = Experiment.model_fields["training"].annotation.model_fields
    hp, config = VGFHyperParams(), VGFConfig()
    for key, field in fields.items():
        if key in PHASE_TYPES:
            assert field.default == getattr(config, key), key
        elif hasattr(hp, key):
            default = getattr(hp, key)
            assert field.default == (list(default) if isinstance(default, tuple) else default), key
