"""Online rollout rounds, synchronous (default) or asynchronous (``async_sampling: true``).

Synchronous: a round is sampled, then trained on, with the weights of the previous round's updates (policy lag 0;
exactly reproducible given the EnvRunners' seeds). Asynchronous: each round is launched with RLlib's async
actor-manager calls (``foreach_env_runner_async`` / ``fetch_ready_async_reqs``, as IMPALA and APPO use them) right
after the previous one is collected, so the EnvRunners sample round k+1 while the learner trains on round k; the
data are then one weight version older than the learner (policy lag 1). Rounds are counted when collected, and
launched only for env steps not yet collected or in flight, so the total env steps and the update-to-data ratio
stay exact over the run; a round in flight when a checkpoint is written is simply sampled again after a restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ray

from vgf_ray.rllib.compat import sample_env_steps

ASYNC_SAMPLE_TAG = "vgf_sample"


@dataclass
class Round:
    """What one rollout round brought back."""

    episodes: list = field(default_factory=list)
    runner_metrics: list[dict] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)  # Ray node id of every EnvRunner that returned a sample
    weights_version: int = 0  # the learner's weight version the EnvRunners acted with


def node_id(_actor: Any = None) -> str:
    """The Ray node this process runs on (usable as a ``foreach_*`` function)."""
    return ray.get_runtime_context().get_node_id()


def _sample_and_report(runner, num_timesteps: int) -> tuple[list, dict, str]:
    episodes = runner.sample(num_timesteps=num_timesteps)
    return episodes, runner.get_metrics(), node_id()


def sample_round(group, wanted: int, timeout_s: float | None, weights_version: int) -> Round:
    """The synchronous round: RLlib's ``synchronous_parallel_sample`` up to ``wanted`` env steps."""
    episodes = sample_env_steps(group, wanted, timeout_s)
    reports = group.foreach_env_runner(lambda runner: (runner.get_metrics(), node_id()),
                                       local_env_runner=group.num_remote_workers() == 0)
    return Round(list(episodes), [m for m, _ in reports], [n for _, n in reports], weights_version)


class AsyncRollouts:
    """At most one round in flight on the remote EnvRunners."""

    def __init__(self) -> None:
        self.in_flight: int | None = None  # weight version of the round in flight, None when there is none

    def launch(self, group, wanted: int, weights_version: int) -> None:
        """Ask every healthy EnvRunner for its share of ``wanted`` env steps; returns at once."""
        share = -(-wanted // max(1, group.num_healthy_remote_workers()))
        group.foreach_env_runner_async(lambda runner, n=share: _sample_and_report(runner, n), tag=ASYNC_SAMPLE_TAG)
        self.in_flight = weights_version

    def collect(self, group, timeout_s: float | None) -> Round:
        """Wait for the round in flight (EnvRunners that died meanwhile return nothing) and hand it over."""
        if self.in_flight is None:
            return Round()
        # A call still running after the timeout stays in flight; its sample arrives with a later round (counted
        # once, when it arrives), and that EnvRunner gets no new request until then.
        results = group.fetch_ready_async_reqs(tags=ASYNC_SAMPLE_TAG, timeout_seconds=timeout_s)
        out = Round(weights_version=self.in_flight)
        self.in_flight = None
        for _, (episodes, metrics, node) in results:
            out.episodes.extend(episodes)
            out.runner_metrics.append(metrics)
            out.nodes.append(node)
        return out
