"""Budget schedules: parsing and errors, applied by the learner at the declared step, exact resume through a
change, and every key PBT may mutate taking effect in a restored algorithm (optimizer rates included)."""

import pytest
import torch

from vgf_ray.core.schedule import BudgetSchedule, ScheduleError
from vgf_ray.metrics import BUDGET_METRICS, MODULE_ID
from vgf_ray.rllib import VGF, VGFConfig
from vgf_ray.tuning.spec import MUTABLE_KEYS

DEFAULTS = {"train_vgf_steps": 1, "vgf_lr": 0.05, "vgf_alpha": 1.0, "exploration_steps": 0,
            "exploration_step_size": None, "value_lr": 3e-4, "actor_lr": 3e-4}


def test_schedule_values_constant_linear_and_units():
    schedule = BudgetSchedule({
        "train_vgf_steps": {"interpolation": "linear", "points": [[0, 0], [30, 3]]},
        "vgf_lr": [[10, 0.2]],
        "exploration_steps": {"unit": "env_steps", "points": [[0, 0], [100, 2]]},
    })
    at = [schedule.values_at(DEFAULTS, step, env) for step, env in ((0, 0), (9, 99), (10, 100), (29, 100), (30, 0))]
    assert [v["train_vgf_steps"] for v in at] == [0, 0, 1, 2, 3]  # linear, rounded down
    assert [v["vgf_lr"] for v in at] == [0.05, 0.05, 0.2, 0.2, 0.2]  # the configured value before the first point
    assert [v["exploration_steps"] for v in at] == [0, 0, 2, 2, 0]  # counted in env steps
    assert [v["exploration_step_size"] for v in at] == [0.05, 0.05, 0.2, 0.2, 0.2]  # follows the step size


@pytest.mark.parametrize("spec, message", [
    ({"train_vgf_step": [[0, 1]]}, r"budget_schedule.train_vgf_step: unknown key"),
    ({"train_vgf_steps": [[0, 1], [20, 2], [10, 3]]}, r"train_vgf_steps\[2\]: step 10 does not come after .* 20"),
    ({"train_vgf_steps": [[0, -1]]}, r"train_vgf_steps\[0\]: train_vgf_steps must be >= 0"),
    ({"train_vgf_steps": [[0, 1.5]]}, r"train_vgf_steps\[0\]: train_vgf_steps takes whole numbers"),
    ({"vgf_alpha": [[0, 0.0]]}, r"vgf_alpha\[0\]: vgf_alpha must be > 0"),
    ({"vgf_lr": [[0, "big"]]}, r"vgf_lr\[0\]: value 'big' is not a number"),
    ({"vgf_lr": {"unit": "env_steps", "points": [[0, 0.1]]}}, r"vgf_lr.unit: env_steps is only for"),
    ({"vgf_lr": []}, r"budget_schedule.vgf_lr: expected a non-empty list"),
    ({"vgf_lr": {"points": [[0, 0.1]], "interp": "linear"}}, r"vgf_lr: unknown field\(s\) \['interp'\]"),
])
def test_bad_schedules_fail_naming_the_entry(spec, message):
    with pytest.raises(ScheduleError, match=message):
        BudgetSchedule(spec)
    with pytest.raises(ValueError, match=message):  # and a config holding it fails validation before training
        VGFConfig().training(budget_schedule=spec).validate()


TINY = dict(hidden_dims=(32, 32), actor_hidden_dims=(32, 32), num_particles=4, bc_flow_steps=3, train_vgf_steps=0,
            updates_per_iteration=10, train_batch_size_per_learner=32)


def config_for(pointmaze_npz, **overrides) -> VGFConfig:
    return (VGFConfig()
            .environment(env_config={"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 10}})
            .training(**{**TINY, "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
                         **overrides})
            .evaluation(evaluation_interval=None)
            .debugging(seed=5))


def learner_budget(result: dict, key: str) -> float:
    return result["learners"][MODULE_ID][BUDGET_METRICS[key]]


def test_schedule_changes_train_steps_at_the_declared_step(ray_session, pointmaze_npz, data_dir):
    schedule = {"train_vgf_steps": [[15, 2]], "vgf_lr": [[20, 0.3]]}
    algo = config_for(pointmaze_npz, budget_schedule=schedule).build_algo()
    try:
        results = [algo.train() for _ in range(3)]
        nets = algo.learner_group._learner.vgf_module.nets
        assert (nets.hp.train_vgf_steps, nets.hp.vgf_lr) == (2, 0.3)
    finally:
        algo.stop()
    # Mean over each round's 10 steps: step 15 is the middle of the second round.
    assert [learner_budget(r, "train_vgf_steps") for r in results] == [0.0, 1.0, 2.0]
    assert [learner_budget(r, "vgf_lr") for r in results] == pytest.approx([0.1, 0.1, 0.3])


def test_resume_is_exact_through_a_schedule_change(ray_session, pointmaze_npz, data_dir, tmp_path):
    config = config_for(pointmaze_npz, budget_schedule={"train_vgf_steps": [[25, 2]], "vgf_alpha": [[25, 0.5]]})
    algo = config.build_algo()
    try:
        algo.train(), algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "ckpt"))
        straight = [algo.train()["learners"][MODULE_ID] for _ in range(2)]
    finally:
        algo.stop()
    restored = VGF.from_checkpoint(checkpoint)
    try:
        resumed = [restored.train()["learners"][MODULE_ID] for _ in range(2)]
    finally:
        restored.stop()
    assert straight[0][BUDGET_METRICS["train_vgf_steps"]] == 1.0  # the change happens inside the resumed part
    for key in ("critic/loss", "bc/loss", BUDGET_METRICS["train_vgf_steps"], BUDGET_METRICS["vgf_alpha"]):
        assert [r[key] for r in resumed] == [r[key] for r in straight], key


MUTATED = {"train_vgf_steps": 2, "vgf_lr": 0.2, "vgf_alpha": 0.4, "exploration_steps": 3,
           "exploration_step_size": 0.07, "value_lr": 1e-2, "actor_lr": 2e-3}


def test_every_mutable_key_takes_effect_after_restore(ray_session, pointmaze_npz, data_dir, tmp_path):
    """What PBT's exploit does: a new Algorithm from the mutated config restores another trial's checkpoint."""
    assert sorted(f"training.{k}" for k in MUTATED) == sorted(MUTABLE_KEYS)
    original = config_for(pointmaze_npz, online_env_steps=20, offline_steps=10, rollout_steps_per_iteration=20,
                          start_training=0)
    algo = original.build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    mutated = config_for(pointmaze_npz, online_env_steps=20, offline_steps=10, rollout_steps_per_iteration=20,
                         start_training=0, **MUTATED)
    clone = mutated.build_algo()
    try:
        clone.restore_from_path(checkpoint)
        result = clone.train()  # the online round: exploration on the EnvRunner, then updates
        learner = clone.learner_group._learner
        rates = {name: opt.param_groups[0]["lr"] for name, opt in learner.get_optimizers_for_module(MODULE_ID)}
        hp = learner.vgf_module.nets.hp
        runner_module = clone.env_runner.module
    finally:
        clone.stop()
    assert rates == {"critic": MUTATED["value_lr"], "behavior": MUTATED["actor_lr"]}
    assert (hp.train_vgf_steps, hp.vgf_lr, hp.vgf_alpha) == (2, 0.2, 0.4)
    for key in ("train_vgf_steps", "vgf_lr", "vgf_alpha", "value_lr", "actor_lr"):
        assert learner_budget(result, key) == pytest.approx(MUTATED[key]), key
    for key in ("exploration_steps", "exploration_step_size"):
        assert result[BUDGET_METRICS[key]] == pytest.approx(MUTATED[key]), key
    budget = runner_module.exploration_budget
    assert (budget.steps, budget.step_size) == (3, 0.07)
    assert runner_module.nets.transport_settings.alpha == 0.4
    assert torch.is_tensor(next(runner_module.parameters()))


def test_module_id_is_rllibs():
    from ray.rllib.core import DEFAULT_MODULE_ID

    assert MODULE_ID == DEFAULT_MODULE_ID


def test_public_api():
    import vgf_ray

    assert vgf_ray.VGF is VGF and vgf_ray.VGFConfig is VGFConfig
    assert vgf_ray.__version__ and vgf_ray.__version__[0].isdigit()
