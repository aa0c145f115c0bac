"""RLlib's BC, IQL and CQL through vgf_ray's front door: same data, evaluation, result keys, tracking and errors."""

import copy
import json
import os

import numpy as np
import pytest

from vgf_ray.baselines.offline_format import PARQUET_FILE, ensure_rllib_offline_data
from vgf_ray.data.spec import DatasetSpec, load_transitions
from vgf_ray.experiment import ExperimentError
from vgf_ray.experiment.baselines import RECOMMENDED, baseline_settings
from vgf_ray.experiment.build import build_config
from vgf_ray.experiment.history import read_history
from vgf_ray.experiment.runner import run_experiment
from vgf_ray.experiment.schema import DEFAULTS
from vgf_ray.metrics import (
    BEST_SUCCESS,
    GRAD_STEPS,
    POLICY_LOSS,
    QF_LOSS,
    budget_metric,
)


def baseline_experiment(tmp_path, npz, algorithm: str, **training) -> dict:
    exp = copy.deepcopy(DEFAULTS)
    exp.update({
        "name": f"tiny-{algorithm}", "algorithm": algorithm, "iterations": "auto",
        "output_dir": str(tmp_path / "runs" / f"tiny-{algorithm}"),
        "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 15}},
        "dataset": {"name": "pointmaze-medium-navigate", "path": str(npz)},
        "training": {"offline_steps": 20, "updates_per_iteration": 10, "train_batch_size_per_learner": 32,
                     algorithm: {"model": {"fcnet_hiddens": [32, 32]}}, **training},
        "evaluation": {"interval": 1, "episodes": 3, "budgets": [0, 1, 2, 3]},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "vgf_test"},
    })
    return exp


@pytest.mark.parametrize("algorithm", ["bc", "iql", "cql"])
def test_baseline_trains_and_reports_with_vgfs_metric_names(ray_session, tmp_path, pointmaze_npz, algorithm):
    result = run_experiment(baseline_experiment(tmp_path, pointmaze_npz, algorithm), progress=False)
    history = result.history
    assert [row[GRAD_STEPS] for row in history] == [10, 20]  # offline_steps in updates_per_iteration chunks
    for row in history:  # evaluated each iteration under VGF's budget-0 names, success from the episodes
        assert 0.0 <= row[budget_metric(0)] <= 1.0 and row[BEST_SUCCESS] == row[budget_metric(0)]
        assert np.isfinite(row[budget_metric(0, "return")])
        assert budget_metric(1) not in row  # no transport budget to evaluate
        assert np.isfinite(row[POLICY_LOSS])
        if algorithm != "bc":
            assert np.isfinite(row[QF_LOSS])
    out = tmp_path / "runs" / f"tiny-{algorithm}"
    assert read_history(out, 2) == history
    assert json.loads((out / "final_evaluation.json").read_text()).keys() == {"budget_0"}
    for name in ("learning_curve.png", "budget_curve.png"):
        assert (out / name).stat().st_size > 0

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    run = mlflow.search_runs(experiment_names=["vgf_test"]).iloc[0]
    assert run["status"] == "FINISHED" and run["tags.algorithm"] == algorithm
    assert run["metrics.budget_0.success"] == history[-1][budget_metric(0)]
    served_like_evaluation(result.checkpoint, pointmaze_npz, algorithm)


def served_like_evaluation(checkpoint: str, npz, algorithm: str) -> None:
    """The checkpoint served: the module's deterministic action (as evaluation plays it), no transport budget."""
    from vgf_ray.rllib.batched_evaluation import greedy_actions
    from vgf_ray.serving.policy import ServedPolicy
    from vgf_ray.serving.requests import RequestError, answer_batch, parse_act_request

    policy = ServedPolicy(checkpoint)
    assert policy.spec.algorithm == algorithm.upper() and policy.spec.info()["budget_range"] == [0, 0]
    obs = np.load(npz)["observations"][:5].astype(np.float32)
    request = parse_act_request({"observation": obs.tolist()}, policy.spec)
    [answer] = answer_batch(policy, [request])
    np.testing.assert_allclose(answer["action"], greedy_actions(policy.module, obs, [0] * 5, 0.0), atol=1e-6)
    assert answer["q"] is None
    with pytest.raises(RequestError, match=r"budget must be an integer in \[0, 0\], got 1"):
        parse_act_request({"observation": obs[0].tolist(), "budget": 1}, policy.spec)


def test_baseline_resumes_its_own_checkpoint(ray_session, tmp_path, pointmaze_npz):
    exp = baseline_experiment(tmp_path, pointmaze_npz, "bc")
    exp["iterations"] = 1
    first = run_experiment(copy.deepcopy(exp), progress=False)
    exp["iterations"] = 2
    resumed = run_experiment(exp, progress=False, resume=first.checkpoint)
    assert [row[GRAD_STEPS] for row in resumed.history] == [10, 20]
    with pytest.raises(ExperimentError, match="--from-checkpoint starts VGF's online fine-tuning"):
        run_experiment(exp, progress=False, from_checkpoint=first.checkpoint)


def test_bad_algorithm_and_keys_fail_naming_them(tmp_path, pointmaze_npz):
    exp = baseline_experiment(tmp_path, pointmaze_npz, "bc")
    exp["algorithm"] = "ppo"
    with pytest.raises(ExperimentError, match=r"algorithm: expected 'vgf', 'bc', 'iql' or 'cql', got 'ppo'"):
        build_config(exp)
    exp["algorithm"] = 3
    with pytest.raises(ExperimentError, match=r"algorithm: expected 'vgf', 'bc', 'iql' or 'cql', got 3"):
        build_config(exp)
    exp = baseline_experiment(tmp_path, pointmaze_npz, "iql", expectile=0.7)
    with pytest.raises(ExperimentError, match=r"training.expectile: not a setting of iql .*training.iql"):
        build_config(exp)
    exp = baseline_experiment(tmp_path, pointmaze_npz, "iql", iql={"expectile_typo": 0.7})
    with pytest.raises(ExperimentError, match="training.iql: .*expectile_typo"):
        build_config(exp)
    exp = baseline_experiment(tmp_path, pointmaze_npz, "bc", bc={"model": [256, 256]})
    with pytest.raises(ExperimentError, match=r"training.bc.model: expected a mapping .*\[256, 256\]"):
        build_config(exp)
    exp = baseline_experiment(tmp_path, pointmaze_npz, "cql", online_env_steps=100)
    with pytest.raises(ExperimentError, match="offline only"):
        build_config(exp)


def test_recommended_settings_and_vgf_keys(capsys, tmp_path, pointmaze_npz):
    shared, own, unused = baseline_settings("iql", {"num_particles": 4, "offline_steps": 5,
                                                    "iql": {"beta": 3.0, "model": {"fcnet_hiddens": [8]}}})
    assert shared == {"offline_steps": 5} and unused == ["num_particles"]
    assert own["beta"] == 3.0 and own["expectile"] == RECOMMENDED["iql"]["expectile"] == 0.9
    assert own["model"] == {"fcnet_hiddens": [8], "fcnet_activation": "relu"}
    config = build_config(baseline_experiment(tmp_path, pointmaze_npz, "iql", num_particles=4))
    assert "iql ignores VGF's training keys ['num_particles']" in capsys.readouterr().out
    assert config.beta == 10.0 and config.expectile == 0.9  # FQL's temperature passes RLlib's MARWIL bound


def test_rllib_names_match():
    from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.learner.learner import POLICY_LOSS_KEY

    from vgf_ray.baselines import offline_format as fmt

    assert (POLICY_LOSS, QF_LOSS) == (POLICY_LOSS_KEY, QF_LOSS_KEY)
    assert (fmt.OBS, fmt.ACTIONS, fmt.REWARDS, fmt.NEXT_OBS, fmt.TERMINATEDS, fmt.TRUNCATEDS, fmt.EPS_ID) == (
        Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS, Columns.TERMINATEDS, Columns.TRUNCATEDS,
        Columns.EPS_ID)


def test_offline_format_holds_the_training_transitions_and_is_cached(tmp_path, pointmaze_npz):
    import pyarrow.parquet as pq

    npz = tmp_path / pointmaze_npz.name  # a private copy (with its -val file) whose timestamp the test moves
    for source in pointmaze_npz.parent.glob("*.npz"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    spec = {"name": "pointmaze-medium-navigate", "path": str(npz)}
    folder = ensure_rllib_offline_data(spec, progress=False)
    assert folder.parent == tmp_path / f"{npz.name}.rllib"  # beside the npz
    table = pq.read_table(folder / PARQUET_FILE).to_pydict()
    data, _ = load_transitions(DatasetSpec.from_dict(spec))
    np.testing.assert_allclose(np.array(table["obs"]), data["observations"], rtol=1e-6)
    np.testing.assert_allclose(np.array(table["new_obs"]), data["next_observations"], rtol=1e-6)
    np.testing.assert_allclose(np.array(table["rewards"]), data["rewards"], rtol=1e-6)
    assert np.array_equal(np.array(table["terminateds"]), data["masks"] == 0)
    written = (folder / PARQUET_FILE).stat().st_mtime_ns
    assert ensure_rllib_offline_data(spec, progress=False) == folder
    assert (folder / PARQUET_FILE).stat().st_mtime_ns == written  # reused, not converted again
    os.utime(npz, ns=(written + 10**9, written + 10**9))  # the source changed: converted again
    ensure_rllib_offline_data(spec, progress=False)
    assert (folder / PARQUET_FILE).stat().st_mtime_ns != written


def test_rllib_offline_pipeline_trains_bc_from_the_cached_parquet(ray_session, tmp_path, pointmaze_npz):
    """``data_pipeline: rllib``: RLlib's own ray.data reader over the converted dataset."""
    exp = baseline_experiment(tmp_path, pointmaze_npz, "bc", data_pipeline="rllib", offline_steps=4,
                              updates_per_iteration=2)
    exp["evaluation"]["interval"] = 2
    history = run_experiment(exp, progress=False).history
    assert [row[GRAD_STEPS] for row in history] == [2, 4]
    assert np.isfinite(history[-1][POLICY_LOSS]) and 0.0 <= history[-1][budget_metric(0)] <= 1.0


@pytest.mark.parametrize("algorithm", ["iql", "cql"])
def test_q_network_mlp_is_one_mlp_over_state_and_action(tmp_path, pointmaze_npz, algorithm):
    """``q_network: mlp`` (default): each critic is MLP([s, a]) as the IQL/CQL/FQL authors build it, 9x cheaper at
    2x256 than RLlib's multi-stream encoder with tanh fusion layers, which ``multi_stream`` keeps."""
    import gymnasium as gym
    import torch
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.models.base import ENCODER_OUT

    obs_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def module(**settings):
        exp = baseline_experiment(tmp_path, pointmaze_npz, algorithm)
        exp["training"][algorithm].update(settings)
        spec = build_config(exp).get_rl_module_spec(spaces={"default_policy": (obs_space, act_space)})
        return spec.build()

    mlp, streams = module(), module(q_network="multi_stream")
    first = dict(mlp.qf_encoder.named_parameters())["net.mlp.0.weight"]
    assert tuple(first.shape) == (32, 4 + 2)  # the first layer sees the state and the action together
    assert any(name.startswith("base_encoders.actions") for name, _ in streams.qf_encoder.named_parameters())
    obs = torch.zeros(3, 4)
    actions = torch.tensor([[0.0, 0.0], [0.5, -0.5], [-1.0, 1.0]])
    q = mlp.qf(mlp.qf_encoder({Columns.OBS: obs, Columns.ACTIONS: actions})[ENCODER_OUT])
    assert q.shape == (3, 1) and len(set(q.squeeze(1).tolist())) == 3  # the value depends on the action
    with pytest.raises(ExperimentError, match=rf"training.{algorithm}.q_network: 'wide' is not one of"):
        module(q_network="wide")


def test_q_network_on_bc_fails_naming_it(tmp_path, pointmaze_npz):
    exp = baseline_experiment(tmp_path, pointmaze_npz, "bc", bc={"q_network": "mlp"})
    with pytest.raises(ExperimentError, match="training.bc.q_network: bc has no critic"):
        build_config(exp)


def test_iql_policy_gaussian_is_fqls_unit_variance_gaussian(tmp_path, pointmaze_npz):
    """``policy: gaussian`` (default): the actor's log-likelihood of a dataset action on the box's edge is a squared
    error, where RLlib's squashed Gaussian (``squashed``) puts it 7 pre-squash units away; acting takes the mean."""
    import math

    import gymnasium as gym
    import torch
    from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

    from vgf_ray.baselines.policy import TorchUnitGaussian

    obs_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def module(**settings):
        exp = baseline_experiment(tmp_path, pointmaze_npz, "iql")
        exp["training"]["iql"].update(settings)
        return build_config(exp).get_rl_module_spec(spaces={"default_policy": (obs_space, act_space)}).build()

    gaussian, squashed = module(), module(policy="squashed")
    assert gaussian.get_train_action_dist_cls() is TorchUnitGaussian
    assert squashed.get_train_action_dist_cls() is TorchSquashedGaussian
    assert dict(gaussian.qf_encoder.named_parameters())["net.mlp.0.weight"].shape == (32, 6)  # still MLP([s, a])
    obs = torch.zeros(1, 4)
    logits = gaussian.pi(gaussian.pi_encoder({"obs": obs})["encoder_out"])
    assert logits.shape == (1, 2)  # the mean only: the standard deviation is 1
    dist = TorchUnitGaussian.from_logits(logits)
    edge = torch.tensor([[1.0, -1.0]])
    expected = -0.5 * (edge - logits).square().sum() - math.log(2 * math.pi)
    torch.testing.assert_close(dist.logp(edge).sum(), expected)
    torch.testing.assert_close(dist.to_deterministic().sample(), logits)
    with pytest.raises(ExperimentError, match=r"training.iql.policy: 'beta' is not one of \['gaussian', 'squashed'\]"):
        module(policy="beta")
    for algorithm in ("cql", "bc"):
        exp = baseline_experiment(tmp_path, pointmaze_npz, algorithm)
        exp["training"][algorithm]["policy"] = "gaussian"
        with pytest.raises(ExperimentError, match=rf"training.{algorithm}.policy: only iql has this key"):
            build_config(exp)


def contextual_bandit(n: int = 2048, seed: int = 0) -> dict[str, np.ndarray]:
    """One-step episodes: the context ``s0`` is -1 or +1, actions are uniform on the box, and the reward
    ``-|a - 0.5 s0|^2`` peaks at a different action in each context. The data's mean action is 0 in both."""
    rng = np.random.default_rng(seed)
    context = rng.choice([-1.0, 1.0], size=n).astype(np.float32)
    obs = np.stack([context, rng.normal(size=n).astype(np.float32)], 1)
    actions = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    rewards = -np.square(actions - 0.5 * context[:, None]).sum(1)
    return {"observations": obs, "actions": actions, "rewards": rewards.astype(np.float32),
            "next_observations": obs, "masks": np.zeros(n, np.float32)}


@pytest.mark.parametrize(("algorithm", "steps"), [("bc", 400), ("iql", 400), ("cql", 600)])
def test_baselines_learn_a_contextual_bandit(tmp_path, pointmaze_npz, algorithm, steps):
    """The wiring (vgf_ray's in-memory minibatches, critics, policy and target updates around RLlib's losses) learns:
    IQL's advantage weights and CQL's actor move each context's action toward its reward's peak at +-0.5, while BC
    clones the data's mean action, 0. Recommended settings at 2x64, batch 128."""
    import gymnasium as gym
    import torch
    from ray.rllib.core.columns import Columns

    from vgf_ray.metrics import MODULE_ID

    exp = baseline_experiment(tmp_path, pointmaze_npz, algorithm, offline_steps=steps,
                              train_batch_size_per_learner=128)
    exp["training"][algorithm]["model"] = {"fcnet_hiddens": [64, 64]}
    exp["seed"] = 0
    obs_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    learner = build_config(exp).build_learner(env=None, spaces={MODULE_ID: (obs_space, act_space)})
    learner.install_offline_data(contextual_bandit())
    learner.run_baseline_updates(steps)
    module = learner.module[MODULE_ID]
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: torch.tensor([[1.0, 0.0], [-1.0, 0.0]])})
        dist = module.get_inference_action_dist_cls().from_logits(logits[Columns.ACTION_DIST_INPUTS])
        actions = dist.to_deterministic().sample().numpy()
    toward_peak = actions * np.array([[1.0], [-1.0]])  # each context's action, signed so its peak is at +0.5
    if algorithm == "bc":
        assert np.abs(actions).max() < 0.1, actions
    elif algorithm == "iql":
        assert np.abs(toward_peak - 0.5).max() < 0.2, actions
    else:  # CQL's actor (lr 1e-4) is slower: at least a fifth of the way in every coordinate and context
        assert toward_peak.min() > 0.1, actions


@pytest.mark.parametrize("algorithm", ["iql"])
def test_baseline_results_pass_rllibs_checker(ray_session, tmp_path, pointmaze_npz, algorithm):
    """A baseline's train() results are in RLlib's layout too, with the standard evaluation return at budget 0."""
    from ray.rllib.utils.test_utils import check_train_results_new_api_stack

    from vgf_ray.experiment.build import build_config

    algo = build_config(baseline_experiment(tmp_path, pointmaze_npz, algorithm)).build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    check_train_results_new_api_stack({**result, "config": algo.config.to_dict()})
    assert result["learners"]["__all_modules__"]["num_grad_steps_lifetime"] == 10
    assert result["num_env_steps_trained_lifetime"] == 10 * 32
    evaluation = result["evaluation"]
    assert evaluation["env_runners"]["episode_return_mean"] == evaluation["budget_0"]["return"]
    assert evaluation["env_runners"]["num_episodes"] == 3
