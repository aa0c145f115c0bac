"""Serving a trained agent: the Serve endpoint (budget per request, batching, bad requests) and exported files."""

import json
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import yaml

from vgf_ray.cli import main
from vgf_ray.core.transport import TransportBudget


@pytest.fixture(scope="module")
def checkpoint(ray_session, pointmaze_npz, tmp_path_factory):
    """A tiny VGF trained offline on pointmaze for a few iterations."""
    folder = tmp_path_factory.mktemp("serving")
    exp = {"name": "tiny", "iterations": 2, "output_dir": str(folder / "run"),
           "env": {"ogbench": "pointmaze-medium-navigate", "env_kwargs": {"max_episode_steps": 10}},
           "dataset": {"name": "pointmaze-medium-navigate", "path": str(pointmaze_npz)},
           "training": {"hidden_dims": [32, 32], "actor_hidden_dims": [32, 32], "num_particles": 8,
                        "bc_flow_steps": 3, "updates_per_iteration": 20, "train_batch_size_per_learner": 32,
                        "offline_steps": 40, "online_env_steps": 0, "train_vgf_steps": 2,
                        "bf16": False},  # fp32 Q everywhere: bf16 rounds away the few-step Q gains compared below
           "evaluation": {"interval": 2, "episodes": 1, "budgets": [0]},
           "mlflow": {"tracking_uri": f"sqlite:///{folder}/mlflow.db", "experiment": "serving"}}
    (folder / "tiny.yaml").write_text(yaml.safe_dump(exp))
    assert main(["train", str(folder / "tiny.yaml"), "--quiet"]) == 0
    return str(folder / "run" / "checkpoint")


@pytest.fixture(scope="module")
def observations(pointmaze_npz):
    return np.load(pointmaze_npz)["observations"][::20][:16].astype(np.float32)


@pytest.fixture(scope="module")
def policy(checkpoint):
    from vgf_ray.serving.policy import ServedPolicy

    return ServedPolicy(checkpoint)


def module_action(policy, obs: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """The module's own acting rule (autograd reference), its behavior noise drawn from ``seed``."""
    size = policy.spec.default_step_size
    generator = torch.Generator().manual_seed(seed)
    return policy.module.nets.act_eager(torch.as_tensor(obs), TransportBudget(budget, size), generator=generator
                                        ).numpy()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(checkpoint, ray_session):
    from ray import serve

    from vgf_ray.serving import deployment
    from vgf_ray.serving.app import start

    url = start(deployment(checkpoint, max_batch_size=16, batch_wait_ms=20, max_request_rows=64), free_port())
    yield url
    serve.shutdown()
    names = [a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)]
    assert not [n for n in names if n.startswith("SERVE_")], names  # no Serve actor left behind


def post(url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/act", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_served_actions_are_the_modules_at_every_budget(endpoint, policy, observations):
    for budget in (0, 1, 3):
        status, answer = post(endpoint, {"observation": observations[0].tolist(), "budget": budget, "seed": 11})
        assert status == 200 and answer["budget"] == budget
        np.testing.assert_allclose(answer["action"], module_action(policy, observations[:1], budget, 11)[0],
                                   atol=1e-5)
    # A batch of rows, one seed: the module's draw for the whole batch.
    status, answer = post(endpoint, {"observation": observations.tolist(), "budget": 2, "seed": 5})
    assert status == 200 and len(answer["action"]) == len(observations) == len(answer["q"])
    np.testing.assert_allclose(answer["action"], module_action(policy, observations, 2, 5), atol=1e-5)


def test_the_requests_budget_and_step_size_reach_the_transport(endpoint, observations):
    """Same behavior samples (seed): budget 3 moves the chosen actions away from budget 0's, further with a larger
    step size (particle Adam moves each coordinate by about the step size per step)."""
    def actions(budget: int, step_size: float) -> np.ndarray:
        body = {"observation": observations.tolist(), "budget": budget, "seed": 3, "step_size": step_size}
        return np.asarray(post(endpoint, body)[1]["action"])

    base = actions(0, 0.05)
    moved = {size: float(np.abs(actions(3, size) - base).mean()) for size in (0.01, 0.1)}
    assert moved[0.1] > moved[0.01] > 0.0, moved


def test_concurrent_requests_with_different_budgets_share_batches_and_keep_their_answers(endpoint, observations):
    bodies = [{"observation": observations[i].tolist(), "budget": i % 4, "seed": 100 + i} for i in range(16)]
    alone = [post(endpoint, body)[1]["action"] for body in bodies]
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda body: post(endpoint, body), bodies))
    assert all(status == 200 for status, _ in together)
    np.testing.assert_allclose([answer["action"] for _, answer in together], alone, atol=1e-5)


@pytest.mark.parametrize("body, status, message", [
    (b"{not json", 400, "body is not JSON"),
    (b'{"observation": [NaN, 0.0]}', 400, "finite numbers, got NaN"),
    ({"observation": [1e39, 0.0]}, 400, "NaN or infinity"),
    ({"observation": [0.0, 0.0, 0.0]}, 400, "row 0 has length 3; this policy takes 2 numbers"),
    ({"observation": [[0.0, 0.0], [0.0]]}, 400, "row 1 has length 1"),
    ({"observation": [0.0, "a"]}, 400, "other than numbers"),
    ({"observation": [0.0, 0.0], "budget": 33}, 400, "budget must be an integer in [0, 32], got 33"),
    ({"observation": [0.0, 0.0], "budget": 1.5}, 400, "budget must be an integer"),
    ({"observation": [0.0, 0.0], "step_size": 3.0}, 400, "step_size must be a number in [0, 2.0], got 3.0"),
    ({"observation": [0.0, 0.0], "seed": -1}, 400, "seed must be an integer"),
    ({"observation": [[0.0, 0.0]] * 65}, 413, "65 rows, above this server's limit of 64"),
    ({"obs": [0.0, 0.0]}, 400, "unknown keys ['obs']"),
    ([0.0, 0.0], 400, "body must be a JSON object"),
])
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_keeps_serving(endpoint, body, status, message):
    code, answer = post(endpoint, body)
    assert code == status and message in answer["error"], answer
    assert post(endpoint, {"observation": [0.0, 0.0]})[0] == 200


def test_info_and_health(endpoint, checkpoint):
    with urllib.request.urlopen(f"{endpoint}/info") as response:
        info = json.loads(response.read())
    assert info["algorithm"] == "VGF" and info["budget_range"] == [0, 32] and info["checkpoint"] == checkpoint
    assert info["observation_space"]["shape"] == [2] and info["action_space"]["shape"] == [2]
    assert info["default_budget"] == 2 and info["max_batch_size"] == 16  # the run's L_train
    with urllib.request.urlopen(f"{endpoint}/healthz") as response:
        assert json.loads(response.read()) == {"status": "ok"}


def test_serve_refuses_a_checkpoint_that_does_not_load_with_evaluates_error(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vgf-ray serve: error: serve {tmp_path}: not an RLlib checkpoint folder (no rllib_checkpoint.json)"


STANDALONE = textwrap.dedent("""
    import json, sys
    import numpy as np
    inputs = np.load(sys.argv[2])
    if sys.argv[1].endswith(".onnx"):
        import onnxruntime
        session = onnxruntime.InferenceSession(sys.argv[1])
        action, q = session.run(None, {"observation": inputs["obs"], "noise": inputs["noise"]})
    else:
        import torch
        function = torch.jit.load(sys.argv[1])
        action, q = (t.numpy() for t in function(torch.as_tensor(inputs["obs"]), torch.as_tensor(inputs["noise"])))
    assert "vgf_ray" not in sys.modules and "ray" not in sys.modules, "the exported file pulled in vgf_ray or Ray"
    np.savez(sys.argv[3], action=action, q=q)
""")


@pytest.mark.parametrize("fmt, suffix", [("torchscript", ".pt"), ("onnx", ".onnx")])
def test_exported_function_runs_without_vgf_ray_and_matches_the_module(checkpoint, policy, observations, fmt, suffix,
                                                                       tmp_path, capsys):
    out = tmp_path / f"act{suffix}"
    assert main(["export", checkpoint, "--budget", "3", "--format", fmt, "--out", str(out)]) == 0
    assert "budget 3" in capsys.readouterr().out
    obs = np.concatenate([observations, observations[:3] + 0.5])  # a batch size the export never saw
    noise = torch.randn((len(obs), 8, 2), generator=torch.Generator().manual_seed(9))
    np.savez(tmp_path / "inputs.npz", obs=obs, noise=noise.numpy())
    subprocess.run([sys.executable, "-c", STANDALONE, str(out), str(tmp_path / "inputs.npz"),
                    str(tmp_path / "outputs.npz")], check=True, cwd=tmp_path)
    outputs = np.load(tmp_path / "outputs.npz")
    np.testing.assert_allclose(outputs["action"], module_action(policy, obs, 3, 9), atol=1e-5)
    _, q = policy.act(obs, [3] * len(obs), [policy.spec.default_step_size] * len(obs), noise)
    np.testing.assert_allclose(outputs["q"], q, atol=1e-4)


def test_export_refuses_a_budget_out_of_range(checkpoint, tmp_path, capsys):
    assert main(["export", checkpoint, "--budget", "40", "--out", str(tmp_path / "a.pt")]) == 2
    assert "--budget must be in [0, 32], got 40" in capsys.readouterr().err


def test_actions_come_back_in_the_envs_own_box():
    from types import SimpleNamespace

    from vgf_ray.envs import VGFEnv
    from vgf_ray.serving.acting import to_env_box
    from vgf_ray.serving.policy import env_spaces

    low, high, obs_space = env_spaces(SimpleNamespace(env=VGFEnv, env_config={"gym_id": "Pendulum-v1"}))
    assert low.tolist() == [-2.0] and high.tolist() == [2.0] and obs_space["shape"] == [3]
    unit = torch.tensor([[-1.0], [0.0], [0.5]])
    assert to_env_box(unit, torch.as_tensor(low), torch.as_tensor(high)).flatten().tolist() == [-2.0, 0.0, 1.0]
