"""Offline+online replay: sampling styles draw the documented proportions, FIFO evicts online data only,
and episode conversion zeroes the bootstrap mask on terminations but not on time-limit truncations."""

import numpy as np
import pytest
import torch
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from vgf_ray.data.replay import OfflineOnlineReplay, episodes_to_transitions


def transitions(n: int, reward: float, start: int = 0) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n, dtype=np.float32)
    return {"observations": np.stack([ids, ids], 1), "next_observations": np.stack([ids + 1, ids + 1], 1),
            "actions": np.zeros((n, 1), np.float32), "rewards": np.full(n, reward, np.float32),
            "masks": np.ones(n, np.float32)}


def online_share(replay: OfflineOnlineReplay, draws: int = 40, batch: int = 256) -> float:
    g = torch.Generator().manual_seed(0)
    return float(torch.cat([replay.sample(batch, g)["rewards"] for _ in range(draws)]).mean())


@pytest.mark.parametrize("style, fraction, expected", [
    ("iql", None, 300 / (700 + 300)), ("rlpd", None, 0.5), ("wsrl", None, 1.0), ("iql", 0.25, 0.25),
    ("rlpd", 0.1, 0.1),
])
def test_sampling_styles_draw_documented_proportions(style, fraction, expected):
    replay = OfflineOnlineReplay(transitions(700, 0.0), capacity=1000, style=style, online_fraction=fraction)
    replay.add_online(transitions(300, 1.0))
    share = online_share(replay)
    n = 40 * 256
    assert abs(share - expected) <= 4 * np.sqrt(expected * (1 - expected) / n) + 1e-3, (share, expected)


def test_before_online_data_arrives_every_style_samples_the_dataset():
    for style in ("iql", "rlpd", "wsrl"):
        replay = OfflineOnlineReplay(transitions(50, 0.0), style=style)
        assert replay.sample(64)["rewards"].sum() == 0


def test_fifo_evicts_online_data_only():
    replay = OfflineOnlineReplay(transitions(20, 0.0), capacity=10, style="iql")
    replay.add_online(transitions(7, 1.0, start=100))
    replay.add_online(transitions(8, 1.0, start=200))
    state = replay.online.state_dict()
    kept = state["data"]["observations"][:, 0]
    np.testing.assert_array_equal(kept, [105, 106, 200, 201, 202, 203, 204, 205, 206, 207])
    assert len(replay) == 30 and state["total_added"] == 15
    np.testing.assert_array_equal(replay.offline["observations"][:, 0].numpy(), np.arange(20))


def test_online_state_roundtrip():
    replay = OfflineOnlineReplay(transitions(5, 0.0), capacity=4)
    replay.add_online(transitions(6, 1.0, start=10))
    other = OfflineOnlineReplay(transitions(5, 0.0), capacity=4)
    other.online.load_state_dict(replay.online.state_dict())
    np.testing.assert_array_equal(other.online.state_dict()["data"]["observations"],
                                  replay.online.state_dict()["data"]["observations"])
    assert other.online.total_added == 6


def test_bad_replay_settings_are_rejected():
    with pytest.raises(ValueError, match="replay_style='per'"):
        OfflineOnlineReplay(transitions(5, 0.0), style="per")
    with pytest.raises(ValueError, match="online_fraction must be in"):
        OfflineOnlineReplay(transitions(5, 0.0), online_fraction=1.5)


def _episode(n: int, terminated: bool, truncated: bool) -> SingleAgentEpisode:
    obs = [np.full(2, i, np.float32) for i in range(n + 1)]
    return SingleAgentEpisode(observations=obs, actions=[np.zeros(1, np.float32)] * n, rewards=[-1.0] * n,
                              infos=[{}] * (n + 1), terminated=terminated, truncated=truncated,
                              len_lookback_buffer=0)


def test_episode_masks_terminations_but_not_truncations():
    data = episodes_to_transitions([_episode(3, True, False), _episode(4, False, True), _episode(2, False, False)])
    np.testing.assert_array_equal(data["masks"], [1, 1, 0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(data["next_observations"][:3, 0], [1, 2, 3])
    assert data["actions"].shape == (9, 1)
