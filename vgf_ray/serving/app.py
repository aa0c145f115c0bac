"""The Ray Serve application: ``POST /act`` (batched), ``GET /info``, ``GET /healthz``, on 127.0.0.1 only.

Requests are checked one by one (a bad one gets its 4xx and never reaches a batch), then ``@serve.batch`` gathers
up to ``max_batch_size`` of them into one module call, rows with different budgets included.
"""


import socket
import time
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from vgf_ray.errors import InputError
from vgf_ray.experiment import init_ray
from vgf_ray.experiment.interrupt import StopRequest
from vgf_ray.experiment.schema import DEFAULTS
from vgf_ray.serving.defaults import (
    DEFAULT_BATCH_WAIT_MS,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_PORT,
    HOST,
    MAX_REQUEST_ROWS,
)
from vgf_ray.serving.policy import ServedPolicy, checked_checkpoint
from vgf_ray.serving.requests import (
    ActRequest,
    RequestError,
    answer_batch,
    decode_json,
    parse_act_request,
)

APP_NAME = "vgf_ray"
api = FastAPI(title="vgf_ray policy", description="VGF's greedy action with the transport budget per request")


@serve.deployment
@serve.ingress(api)
class PolicyServer:
    """One replica: the checkpoint's policy and a batch queue in front of it."""

    def __init__(self, checkpoint: str, max_batch_size: int, batch_wait_s: float, max_request_rows: int):
        self.policy = ServedPolicy(checkpoint)
        self.limits = {"max_batch_size": max_batch_size, "max_request_rows": max_request_rows}
        self.act_batch.set_max_batch_size(max_batch_size)
        self.act_batch.set_batch_wait_timeout_s(batch_wait_s)

    @api.get("/healthz")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/info")
    def info(self) -> dict[str, Any]:
        return self.policy.spec.info() | self.limits

    @api.post("/act")
    async def act(self, request: Request):
        try:
            parsed = parse_act_request(decode_json(await request.body()), self.policy.spec,
                                       self.limits["max_request_rows"])
        except RequestError as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        return await self.act_batch(parsed)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_MS / 1000)
    async def act_batch(self, requests: list[ActRequest]) -> list[dict[str, Any]]:
        return answer_batch(self.policy, requests)


def deployment(checkpoint: str, replicas: int = 1, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
               batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS, max_request_rows: int = MAX_REQUEST_ROWS,
               cpus_per_replica: float = 1.0, gpus_per_replica: float = 0.0):
    """The policy as a Serve application (``serve.run`` it, or compose it into your own app); the checkpoint is
    checked here, so a bad one fails now with ``evaluate``'s one-line error instead of in a replica's retries."""
    for name, value, low in (("replicas", replicas, 1), ("max_batch_size", max_batch_size, 1),
                             ("max_request_rows", max_request_rows, 1)):
        if int(value) < low:
            raise InputError(f"serve: {name} must be >= {low}, got {value}")
    if not batch_wait_ms >= 0:
        raise InputError(f"serve: batch_wait_ms must be >= 0, got {batch_wait_ms}")
    folder = checked_checkpoint(checkpoint)
    options = {"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
    return PolicyServer.options(num_replicas=int(replicas), ray_actor_options=options,
                                max_ongoing_requests=max(2 * int(max_batch_size), 64)).bind(
        str(folder), int(max_batch_size), batch_wait_ms / 1000, int(max_request_rows))


def check_port_free(port: int) -> None:
    """A clear error before Serve's proxy fails on a port another process holds."""
    if not 0 < port < 65536:
        raise InputError(f"serve: --port must be in 1..65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as err:
            raise InputError(f"serve: port {port} on {HOST} is in use ({err.strerror})") from None


def start(app, port: int = DEFAULT_PORT) -> str:
    """Start Serve on ``HOST:port`` in the connected Ray and run ``app``; returns the endpoint's URL."""
    check_port_free(port)
    quiet = {"enable_access_log": False, "log_level": "WARNING"}  # a log line per request costs throughput
    serve.start(http_options={"host": HOST, "port": port}, proxy_location="HeadOnly", logging_config=quiet)
    serve.run(app, name=APP_NAME, route_prefix="/", logging_config=quiet)
    return f"http://{HOST}:{port}"


def serve_until_stopped(app, port: int, replicas: int) -> int:
    """``vgf-ray serve``: a local Ray, the app on ``HOST:port`` until SIGINT or SIGTERM, then Serve and Ray shut
    down (no Serve actor is left behind). Returns the signal's exit code."""
    check_port_free(port)
    init_ray({"ray": DEFAULTS["ray"] | {"num_cpus": max(DEFAULTS["ray"]["num_cpus"], replicas + 1)}})
    try:
        url = start(app, port)
        print(f"serving at {url}: POST /act, GET /info, GET /healthz (Ctrl-C stops)", flush=True)
        with StopRequest() as stop:
            while stop.signum is None:
                time.sleep(0.2)
        return 128 + stop.signum
    finally:
        serve.shutdown()
        ray.shutdown()
