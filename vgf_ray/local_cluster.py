"""Several Ray nodes on one machine (Ray's own ``ray.cluster_utils.Cluster``): multi-node placement, node loss and
the Jobs API tried without a cluster, as the tests and ``benchmarks/cluster_throughput.py`` do."""

from __future__ import annotations

import os

from ray.cluster_utils import Cluster


def default_ray_temp_dir() -> str:
    """Where Ray keeps the address file of the cluster it started last: ``$RAY_TMPDIR``, else ``$TMPDIR`` (Linux),
    else ``/tmp``, then ``ray/``."""
    return os.path.join(os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp", "ray")


def start_local_cluster(head_node_args: dict):
    """A ``ray.cluster_utils.Cluster`` with its head started (``add_node`` adds workers).

    The Cluster writes its address file into Ray's default temp folder even when given its own ``temp_dir``, and
    only an earlier Ray run creates that folder: on a fresh machine it would fail with ``FileNotFoundError``."""
    os.makedirs(default_ray_temp_dir(), exist_ok=True)
    return Cluster(initialize_head=True, head_node_args=head_node_args)
