"""`async_sampling: true`: EnvRunners sample the next round while the learner trains on this one. Over a run the
env steps, the replay and the update-to-data ratio stay exact; the data are one weight version old (policy lag
1, reported per round) where the synchronous default has lag 0; weight-sync time and size are metrics."""

import pytest
from test_online import online_config

from vgf_ray.metrics import (
    GRAD_STEPS_LIFETIME,
    ONLINE_BUFFER_SIZE,
    ONLINE_ENV_STEPS_LIFETIME,
    POLICY_LAG,
    WEIGHT_SYNC_MB,
    WEIGHT_SYNC_S,
)

TOTAL, ROUND, UTD = 400, 40, 0.5


def run_online(pointmaze_npz, async_sampling: bool) -> list[dict]:
    config = online_config(pointmaze_npz, online_env_steps=TOTAL, rollout_steps_per_iteration=ROUND,
                           start_training=0, utd_ratio=UTD, async_sampling=async_sampling)
    algo = config.build_algo()
    try:
        results = [algo.train() for _ in range(1 + TOTAL // ROUND)]
        assert algo.phase() == 2  # done
        learner = algo.learner_group._learner
        assert learner.buffer.online.size == TOTAL
        assert algo._async_rollouts.in_flight is None  # nothing sampled beyond the run
    finally:
        algo.stop()
    return [r for r in results if r["phase"] == 1]


@pytest.mark.parametrize("async_sampling, lags", [(False, [0] * 10), (True, [0] + [1] * 9)])
def test_async_rounds_keep_steps_replay_and_utd_exact(ray_session, pointmaze_npz, async_sampling, lags):
    online = run_online(pointmaze_npz, async_sampling)
    steps = [r[ONLINE_ENV_STEPS_LIFETIME] for r in online]
    assert steps == [ROUND * (k + 1) for k in range(TOTAL // ROUND)], steps
    assert [r[ONLINE_BUFFER_SIZE] for r in online] == steps
    assert [r[GRAD_STEPS_LIFETIME] for r in online] == [10 + int(UTD * s) for s in steps]
    assert [r[POLICY_LAG] for r in online] == lags
    assert all(r[WEIGHT_SYNC_S] > 0 and r[WEIGHT_SYNC_MB] > 0 for r in online)
