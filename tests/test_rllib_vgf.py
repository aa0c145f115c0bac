"""VGF through RLlib's new API stack: config validation, training, budget-wise evaluation, exact resume."""

import shutil
import time

import numpy as np
import pytest
import ray
import torch

from vgf_ray.rllib import VGF, VGFConfig

TINY = dict(hidden_dims=(32, 32), actor_hidden_dims=(32, 32), num_particles=4, bc_flow_steps=3, train_vgf_steps=1,
            updates_per_iteration=15, train_batch_size_per_learner=32)


def learner_weights(algo) -> dict:
    return {k: torch.as_tensor(v).clone() for k, v in algo.learner_group.get_weights()["default_policy"].items()}


def tiny_config(pointmaze_npz, data_dir, evaluation_interval=1, **overrides) -> VGFConfig:
    training = {**TINY, "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)}, **overrides}
    return (
        VGFConfig()
        .environment(env_config={"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 20}})
        .training(**training)
        .evaluation(evaluation_interval=evaluation_interval, evaluation_duration=2)
        .debugging(seed=3)
    )


@pytest.mark.parametrize(
    "overrides, key",
    [({"num_particles": 0}, "num_particles"), ({"train_q_agg": "median"}, "train_q_agg"),
     ({"train_vgf_steps": -2}, "train_vgf_steps"), ({"eval_budgets": [0, -1]}, "eval_budgets"),
     ({"updates_per_iteration": 0}, "updates_per_iteration"),
     ({"exploration_selection": "best"}, "exploration_selection"),
     ({"dataset": {"source": "d4rl"}}, "dataset.source"), ({"dataset": {"nme": "x"}}, "nme")],
)
def test_validate_rejects_bad_values_by_key(overrides, key):
    config = VGFConfig().training(**overrides)
    with pytest.raises(ValueError, match=key):
        config.validate()


def test_trains_and_reports_every_budget(ray_session, pointmaze_npz, data_dir):
    algo = tiny_config(pointmaze_npz, data_dir, eval_budgets=[0, 2]).build_algo()
    try:
        local_learner = algo.learner_group._learner
        held_out = local_learner.buffer.sample(4096, torch.Generator().manual_seed(0))

        def behavior_loss() -> float:
            with torch.no_grad():
                return float(local_learner.vgf_module.nets.behavior_loss(held_out, torch.Generator().manual_seed(1))[0])

        untrained = behavior_loss()
        algo.train()
        second = algo.train()
        trained = behavior_loss()
    finally:
        algo.stop()
    learner = second["learners"]["default_policy"]
    for key in ("critic/loss", "critic/q_mean", "bc/loss"):
        assert np.isfinite(learner[key])
    assert second["learners"]["__all_modules__"]["num_grad_steps_lifetime"] == 30
    assert second["num_env_steps_trained_lifetime"] == 30 * TINY["train_batch_size_per_learner"]
    # 30 steps must have learned the behavior flow: its loss on a fixed 4096-transition batch falls below 60% of the
    # untrained networks' (measured: 12.0 -> 5.6).
    assert trained < 0.6 * untrained, (untrained, trained)
    for budget in (0, 2):
        stats = second["evaluation"][f"budget_{budget}"]
        assert stats["episodes"] == 2 and stats["episode_len"] == 20
        assert 0.0 <= stats["success"] <= 1.0 and stats["return"] <= 0.0
    assert "budget_1" not in second["evaluation"]
    # RLlib's standard block reports the default test budget: L_train = 1 is not evaluated, so the largest below it.
    standard = second["evaluation"]["env_runners"]
    assert standard["episode_return_mean"] == second["evaluation"]["budget_0"]["return"]
    assert (standard["episode_len_mean"], standard["num_episodes"]) == (20, 2)


def test_budget_is_settable_at_inference(ray_session, pointmaze_npz, data_dir):
    algo = tiny_config(pointmaze_npz, data_dir, evaluation_interval=None).build_algo()
    try:
        algo.train()
        module = algo.get_module()
        obs = {"obs": torch.zeros(8, 2)}
        actions = {}
        for steps in (0, 3):
            module.set_budget(steps, 0.2)
            torch.manual_seed(0)
            actions[steps] = module.forward_inference(obs)["actions"]
        assert not torch.allclose(actions[0], actions[3])
        budget = module.inference_budget
        assert (budget.steps, budget.step_size) == (3, 0.2)
        _, start = module.nets.sample_particles(obs["obs"], budget.__class__(0, 0.2), torch.Generator().manual_seed(1))
        _, moved = module.nets.sample_particles(obs["obs"], budget, torch.Generator().manual_seed(1))
        assert 0 < (moved - start).abs().max() <= 1.5 * 3 * 0.2  # Adam steps are ~epsilon, not exactly
    finally:
        algo.stop()


def test_restored_checkpoint_continues_training_exactly(ray_session, pointmaze_npz, data_dir, tmp_path):
    config = tiny_config(pointmaze_npz, data_dir, evaluation_interval=None)
    algo = config.build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "ckpt"))
        expected = algo.train()["learners"]["default_policy"]
        expected_weights = learner_weights(algo)
        torch.manual_seed(0)
        expected_actions = algo.get_module().forward_inference({"obs": torch.ones(4, 2)})["actions"]
    finally:
        algo.stop()
    fresh = config.build_algo()
    try:
        fresh.load_module_weights(checkpoint)  # networks only, e.g. to fine-tune an offline run online
        restored_only_weights = learner_weights(fresh)
        np.testing.assert_array_equal(fresh.get_module().state_dict()["nets.critic.weights.0"],
                                      restored_only_weights["nets.critic.weights.0"])
    finally:
        fresh.stop()
    restored = VGF.from_checkpoint(checkpoint)
    try:
        checkpoint_weights = learner_weights(restored)
        for key, value in checkpoint_weights.items():
            torch.testing.assert_close(restored_only_weights[key], value, rtol=0, atol=0)
        got = restored.train()["learners"]["default_policy"]
        for key in ("critic/loss", "bc/loss", "critic/q_mean"):
            assert got[key] == expected[key], key
        weights = learner_weights(restored)
        np.testing.assert_array_equal(restored.get_module().state_dict()["nets.critic.weights.0"],
                                      weights["nets.critic.weights.0"])  # EnvRunners got the trained weights
        bad = [k for k, v in expected_weights.items() if not torch.equal(weights[k], v)]
        assert not bad, bad
        # The restored run's EnvRunner acts exactly like the original run's after the same training.
        torch.manual_seed(0)
        actions = restored.get_module().forward_inference({"obs": torch.ones(4, 2)})["actions"]
        torch.testing.assert_close(actions, expected_actions, rtol=0, atol=0)
        assert not torch.equal(actions, actions[:1].expand_as(actions))  # not a degenerate constant policy
    finally:
        restored.stop()


def test_two_learners_stay_in_sync_with_ddp(ray_session, pointmaze_npz, data_dir, tmp_path):
    """Remote learners (torch DDP over gloo) get the dataset from the driver through the object store (on a
    cluster the file is on the driver's node only), sample their own batches but hold identical weights."""
    driver_only = tmp_path / pointmaze_npz.name
    val = pointmaze_npz.with_name(pointmaze_npz.name.replace(".npz", "-val.npz"))
    shutil.copy(pointmaze_npz, driver_only)
    shutil.copy(val, tmp_path / val.name)
    config = tiny_config(driver_only, data_dir, evaluation_interval=None).learners(num_learners=2,
                                                                                   num_cpus_per_learner=1)
    algo = config.build_algo()
    try:
        algo._send_dataset_to_learners()
        driver_only.unlink()  # learners reading the file themselves would now fail
        (tmp_path / val.name).unlink()
        result = algo.train()
        # Both learners took the same 15 gradient steps, each on its own minibatches.
        counters = result["learners"]["__all_modules__"]
        assert counters["num_grad_steps_lifetime"] == TINY["updates_per_iteration"]
        assert counters["num_env_steps_trained_lifetime"] == 2 * 15 * TINY["train_batch_size_per_learner"]
        sums = algo.learner_group.foreach_learner(
            lambda learner: [float(p.detach().sum()) for p in learner.vgf_module.nets.parameters()]
        )
        first, second = (r.get() for r in sums)
        assert first == second
    finally:
        algo.stop()


def test_lost_remote_learner_is_replaced_with_a_survivors_state_and_the_data(ray_session, pointmaze_npz, data_dir):
    """A DDP learner dies between rounds: before the next update the group is rebuilt, both learners hold the
    survivor's weights (not fresh ones), the new one gets the offline dataset from the driver, and training goes on
    with every counter kept."""
    config = tiny_config(pointmaze_npz, data_dir, evaluation_interval=None).learners(num_learners=2,
                                                                                   num_cpus_per_learner=1)
    algo = config.build_algo()

    def param_sums():
        return [r.get() for r in algo.learner_group.foreach_learner(
            lambda learner: [float(p.detach().sum()) for p in learner.vgf_module.nets.parameters()])]

    try:
        algo.train()
        before = param_sums()[0]
        ray.kill(algo.learner_group._workers[1])
        deadline = time.monotonic() + 30  # ray.kill returns before the actor is gone
        while all(r.ok for r in algo.learner_group.foreach_learner(lambda learner: 1, healthy_only=False)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        algo._replace_lost_learners()
        assert param_sums() == [before, before]
        result = algo.train()
        assert result["learner_restarts"] == 1
        assert result["num_grad_steps_lifetime"] == 2 * TINY["updates_per_iteration"]
        after = param_sums()
        assert after[0] == after[1] and after[0] != before
    finally:
        algo.stop()


def test_inference_only_module_drops_the_target_critic_and_acts_like_the_learner():
    import gymnasium

    from vgf_ray.core.hparams import VGFHyperParams
    from vgf_ray.rllib.module import VGFTorchRLModule

    spaces = {"observation_space": gymnasium.spaces.Box(-np.inf, np.inf, (6,), np.float32),
              "action_space": gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)}
    config = {"vgf": VGFHyperParams(hidden_dims=(16, 16), actor_hidden_dims=(16, 16), num_particles=4).to_dict(),
              "inference_steps": 2}
    learner_module = VGFTorchRLModule(**spaces, model_config=config)
    runner_module = VGFTorchRLModule(**spaces, model_config=config, inference_only=True)
    assert not hasattr(runner_module.nets, "target_critic")
    synced = learner_module.get_state(inference_only=True)
    assert synced and not any(key.startswith("nets.target_critic") for key in synced)
    assert any(key.startswith("nets.target_critic") for key in learner_module.get_state())
    runner_module.set_state(synced)  # raises on a missing key
    obs = {"obs": torch.randn(3, 6)}
    torch.manual_seed(0)
    expected = learner_module.forward_inference(obs)["actions"]
    torch.manual_seed(0)
    torch.testing.assert_close(runner_module.forward_inference(obs)["actions"], expected)


def test_tune_selects_and_stops_on_rllibs_evaluation_return(ray_session, pointmaze_npz, data_dir, tmp_path):
    """An RLlib user's Tune run: VGF itself as the trainable, metric and stop criterion on RLlib's standard
    evaluation key (the default test budget's return)."""
    from ray import tune

    metric = "evaluation/env_runners/episode_return_mean"
    config = tiny_config(pointmaze_npz, data_dir, eval_budgets=[0, 1])
    # 20-step episodes with reward -1 or 0: every evaluation's return is >= -20, so the first one stops the trial.
    tuner = tune.Tuner(VGF, param_space=config, tune_config=tune.TuneConfig(metric=metric, mode="max"),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                 stop={metric: -20.0, "training_iteration": 4}))
    result = tuner.fit().get_best_result()
    assert result.error is None
    assert result.metrics["training_iteration"] == 1
    evaluation = result.metrics["evaluation"]
    assert result.metrics["evaluation"]["env_runners"]["episode_return_mean"] == evaluation["budget_1"]["return"]
    assert result.metrics["num_env_steps_trained_lifetime"] == 15 * TINY["train_batch_size_per_learner"]


def test_result_layout_names_are_rllibs():
    from ray.rllib.core import ALL_MODULES
    from ray.rllib.utils import metrics as rllib

    from vgf_ray import metrics

    assert (metrics.ALL_MODULES, metrics.ENV_RUNNERS) == (ALL_MODULES, rllib.ENV_RUNNER_RESULTS)
    for name in ("NUM_ENV_STEPS_TRAINED", "NUM_ENV_STEPS_TRAINED_LIFETIME", "NUM_MODULE_STEPS_TRAINED",
                 "NUM_ENV_STEPS_SAMPLED_LIFETIME", "NUM_EPISODES_LIFETIME", "EPISODE_RETURN_MEAN", "EPISODE_LEN_MEAN",
                 "NUM_EPISODES"):
        assert getattr(metrics, name) == getattr(rllib, name), name


@pytest.mark.parametrize("budgets, train_steps, expected", [([0, 1, 2, 3], 1, 1), ([0, 1, 2, 3], 5, 3),
                                                             ([0, 2], 1, 0), ([2, 3], 1, 2)])
def test_default_test_budget_is_the_training_budget_or_the_nearest_below(budgets, train_steps, expected):
    from vgf_ray.metrics import default_test_budget

    assert default_test_budget(budgets, train_steps) == expected
