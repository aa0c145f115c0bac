"""Load on the Serve endpoint: concurrent clients on loopback, batching on against off, beside a direct module call.

    python benchmarks/serve_load.py --record serve-load
    python benchmarks/serve_load.py --checkpoint runs/cube-single-play-cpu/checkpoint --clients 1 8 32 128

Without ``--checkpoint`` a VGF at the CPU config's widths (2x256, N=8, K=5) is trained for a few updates on a
generated pointmaze set: latency depends on the networks, not on how well they are trained. Each client sends one
observation per request in a closed loop for ``--seconds``; the endpoint runs once with ``--max-batch-size`` (batching
on) and once with 1 (off), in the same run. Printed: requests/s and p50/p99 latency per client count and mode, the
direct in-process call (``ServedPolicy.act`` for one row), and the targets' ratios at 32 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from records import RESULTS, write_record  # noqa: E402

CPU_NETS = {"hidden_dims": [256, 256], "actor_hidden_dims": [256, 256], "num_particles": 8, "bc_flow_steps": 5}


def train_checkpoint(folder: Path) -> str:
    """A briefly trained VGF at the CPU config's widths (offline, pointmaze, about a minute)."""
    import yaml

    from vgf_ray.cli import main
    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

    data = ensure_ogbench_dataset("pointmaze-medium-navigate", 2000, folder / "data", seed=0, episode_length=201,
                                  progress=False)
    exp = {"name": "serve-load", "iterations": 2, "output_dir": str(folder / "run"),
           "env": {"ogbench": "pointmaze-medium-navigate"},
           "dataset": {"name": "pointmaze-medium-navigate", "path": str(data)},
           "training": {**CPU_NETS, "updates_per_iteration": 20, "offline_steps": 40, "online_env_steps": 0},
           "evaluation": {"interval": 100, "episodes": 1, "budgets": [0]},
           "mlflow": {"tracking_uri": f"sqlite:///{folder}/mlflow.db", "experiment": "serve-load"}}
    (folder / "exp.yaml").write_text(yaml.safe_dump(exp))
    if main(["train", str(folder / "exp.yaml"), "--quiet"]) != 0:
        raise SystemExit("training the benchmark's checkpoint failed")
    return str(folder / "run" / "checkpoint")


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    values = np.asarray(latencies_s) * 1e3
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def direct_call(policy, obs: np.ndarray, budget: int, calls: int) -> dict[str, float]:
    """One row through ``ServedPolicy.act`` in this process: the floor any endpoint adds to."""
    size = policy.spec.default_step_size
    latencies = []
    for i in range(calls + 10):
        start = time.perf_counter()
        policy.act(obs[i % len(obs)][None], [budget], [size], policy.noise(1, None))
        if i >= 10:  # warm-up calls left out
            latencies.append(time.perf_counter() - start)
    return {"requests_per_s": 1.0 / statistics.mean(latencies), **percentiles(latencies)}


async def closed_loop(url: str, obs: np.ndarray, budget: int, clients: int, seconds: float,
                      route: str = "/act") -> dict[str, float]:
    """``clients`` concurrent clients, each sending its next request when the last is answered; ``route``
    ``/healthz`` measures the HTTP path alone (no model call)."""
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(session, index: int) -> None:
        i = index
        while time.perf_counter() < deadline:
            body = json.dumps({"observation": obs[i % len(obs)].tolist(), "budget": budget})
            start = time.perf_counter()
            request = session.post(f"{url}{route}", data=body) if route == "/act" else session.get(f"{url}{route}")
            async with request as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"endpoint answered {response.status}")
            latencies.append(time.perf_counter() - start)
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session, k) for k in range(clients)))
        elapsed = time.perf_counter() - began
    return {"requests_per_s": len(latencies) / elapsed, **percentiles(latencies)}


def load_curve(checkpoint: str, obs: np.ndarray, args, max_batch_size: int) -> dict[int, dict[str, float]]:
    """Start the endpoint with this batch size, warm it up, measure every client count, shut it down."""
    from ray import serve

    from vgf_ray.serving import deployment
    from vgf_ray.serving.app import start

    url = start(deployment(checkpoint, max_batch_size=max_batch_size, batch_wait_ms=args.batch_wait_ms),
                args.port)
    try:
        asyncio.run(closed_loop(url, obs, args.budget, 8, 2.0))  # warm-up
        curve = {}
        for clients in args.clients:
            curve[clients] = asyncio.run(closed_loop(url, obs, args.budget, clients, args.seconds))
            row = curve[clients]
            print(f"batch {max_batch_size:>3}, {clients:>3} clients: {row['requests_per_s']:8.1f} req/s, "
                  f"p50 {row['p50_ms']:7.2f} ms, p99 {row['p99_ms']:7.2f} ms", flush=True)
        if max_batch_size > 1:  # the HTTP path alone at the same load: what the proxy and replica cost per request
            clients = 32 if 32 in args.clients else max(args.clients)
            curve["healthz"] = asyncio.run(closed_loop(url, obs, args.budget, clients, args.seconds, "/healthz"))
            row = curve["healthz"]
            print(f"GET /healthz, {clients:>3} clients: {row['requests_per_s']:8.1f} req/s, "
                  f"p50 {row['p50_ms']:7.2f} ms, p99 {row['p99_ms']:7.2f} ms", flush=True)
        return curve
    finally:
        serve.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: train a small one at the CPU config's widths")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=10.0, help="per client count and mode")
    parser.add_argument("--budget", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--record", default=None, help="write benchmarks/results/NAME/record.json")
    args = parser.parse_args()
    import ray

    from vgf_ray.quiet import quiet_library_noise

    quiet_library_noise()
    print(common.machine(), flush=True)
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    from vgf_ray.serving.policy import ServedPolicy

    checkpoint = args.checkpoint or train_checkpoint(Path(tempfile.mkdtemp(prefix="serve-load")))
    policy = ServedPolicy(checkpoint)
    obs = np.random.default_rng(0).normal(size=(256, policy.spec.obs_dim)).astype(np.float32)
    direct = direct_call(policy, obs, args.budget, 300)
    print(f"direct call: {direct['requests_per_s']:.1f} calls/s, p50 {direct['p50_ms']:.2f} ms, "
          f"p99 {direct['p99_ms']:.2f} ms", flush=True)
    curves = {"batched": load_curve(checkpoint, obs, args, args.max_batch_size),
              "unbatched": load_curve(checkpoint, obs, args, 1)}
    ray.shutdown()
    report(args, direct, curves)


def report(args, direct: dict, curves: dict) -> None:
    at = 32 if 32 in args.clients else max(args.clients)
    speedup = curves["batched"][at]["requests_per_s"] / curves["unbatched"][at]["requests_per_s"]
    p99_ratio = curves["batched"][at]["p99_ms"] / direct["p50_ms"]
    print(f"{at} clients: batching {speedup:.2f}x the requests/s of no batching (target >= 4x); "
          f"p99 {p99_ratio:.1f}x the direct call's latency (target < 10x)", flush=True)
    if not args.record:
        return
    rows = [f"| {mode if c != 'healthz' else 'GET /healthz (no model)'} | {at if c == 'healthz' else c} | "
            f"{r['requests_per_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |"
            for mode, curve in curves.items() for c, r in curve.items()]
    http = curves["batched"].get("healthz")
    notes = [] if http is None else [
        f"The HTTP path alone (GET /healthz, no model call) serves {http['requests_per_s']:.1f} requests/s at {at} "
        f"clients with p99 {http['p99_ms']:.1f} ms; POST /act with batching reaches "
        f"{curves['batched'][at]['requests_per_s'] / http['requests_per_s']:.0%} of that rate: clients, Serve's "
        "proxy and the replica share this machine's cores, and their per-request cost, not the model, bounds "
        "the latency under load."]
    table = "\n".join(["| endpoint | clients | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|", *rows,
                       f"| direct call | 1 | {direct['requests_per_s']:.1f} | {direct['p50_ms']:.2f} | "
                       f"{direct['p99_ms']:.2f} |", "",
                       f"At {at} clients: batching {speedup:.2f}x the requests/s of no batching; batched p99 "
                       f"{p99_ratio:.1f}x the direct call's p50."])
    write_record(RESULTS / args.record, name=args.record, kind="benchmark",
                 title=f"Serve endpoint under load (budget {args.budget}, one observation per request): batching "
                       f"(max {args.max_batch_size}, wait {args.batch_wait_ms} ms) against none",
                 figures={"direct": direct, "curves": curves, "batching_speedup_at": {str(at): speedup},
                          "p99_over_direct_at": {str(at): p99_ratio}}, table=table, notes=notes)


if __name__ == "__main__":
    main()
