"""``POST /act`` bodies: parsed and checked before they reach a batch, each problem a one-line 4xx message."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vgf_ray.serving.defaults import MAX_REQUEST_ROWS
from vgf_ray.serving.policy import MAX_STEP_SIZE, PolicySpec, ServedPolicy

ACT_KEYS = ("observation", "budget", "step_size", "seed")
MAX_SEED = 2**63 - 1


class RequestError(ValueError):
    """A request the server refuses; ``status`` is its HTTP code, the message names the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ActRequest:
    """One request's rows and transport settings; ``single``: one observation sent flat, answered flat."""

    obs: np.ndarray  # [rows, obs_dim] float32
    single: bool
    budget: int
    step_size: float
    seed: int | None


def decode_json(body: bytes) -> Any:
    """The body as JSON; NaN and Infinity, which Python's parser would accept, are refused."""
    def refuse(name: str):
        raise RequestError(f"observation and settings must be finite numbers, got {name}")

    try:
        return json.loads(body, parse_constant=refuse)
    except RequestError:
        raise
    except (ValueError, UnicodeDecodeError) as err:
        raise RequestError(f"body is not JSON: {err}") from None


def parse_act_request(body: Any, spec: PolicySpec, max_rows: int = MAX_REQUEST_ROWS) -> ActRequest:
    """An ``ActRequest`` from a decoded body, or ``RequestError`` naming what is wrong."""
    if not isinstance(body, dict):
        raise RequestError(f"body must be a JSON object with an 'observation', got {type(body).__name__}")
    unknown = sorted(set(body) - set(ACT_KEYS))
    if unknown:
        raise RequestError(f"unknown keys {unknown}; a request has {list(ACT_KEYS)}")
    if "observation" not in body:
        raise RequestError("missing 'observation': a list of numbers, or a list of such lists")
    obs, single = _observation(body["observation"], spec.obs_dim, max_rows)
    budget = _budget(body.get("budget", spec.default_budget), spec.max_budget)
    step_size = _step_size(body.get("step_size", spec.default_step_size))
    return ActRequest(obs, single, budget, step_size, _seed(body.get("seed")))


def _observation(value: Any, obs_dim: int, max_rows: int) -> tuple[np.ndarray, bool]:
    if not isinstance(value, list) or not value:
        raise RequestError("observation must be a non-empty list of numbers or of lists of numbers")
    single = not isinstance(value[0], list)
    rows = [value] if single else value
    if len(rows) > max_rows:
        raise RequestError(f"observation has {len(rows)} rows, above this server's limit of {max_rows}", 413)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != obs_dim:
            length = len(row) if isinstance(row, list) else type(row).__name__
            raise RequestError(f"observation row {i} has length {length}; this policy takes {obs_dim} numbers")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in row):
            raise RequestError(f"observation row {i} holds something other than numbers")
    with np.errstate(over="ignore"):
        obs = np.asarray(rows, np.float32)
    if not np.isfinite(obs).all():
        raise RequestError("observation holds NaN or infinity (or a number beyond float32's range)")
    return obs, single


def _budget(value: Any, max_budget: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= max_budget:
        raise RequestError(f"budget must be an integer in [0, {max_budget}], got {value!r}")
    return value


def _step_size(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= MAX_STEP_SIZE:
        raise RequestError(f"step_size must be a number in [0, {MAX_STEP_SIZE}], got {value!r}")
    return float(value)


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise RequestError(f"seed must be an integer in [0, 2**63 - 1], got {value!r}")
    return value


def answer_batch(policy: ServedPolicy, requests: list[ActRequest]) -> list[dict[str, Any]]:
    """One module call for every row of every request (each row with its request's budget, step size and
    noise), split back into one answer per request."""
    counts = [len(r.obs) for r in requests]

    def rows(value) -> list:
        return [value(r) for r, n in zip(requests, counts, strict=True) for _ in range(n)]

    noise = torch.cat([policy.noise(len(r.obs), r.seed) for r in requests]) if policy.is_vgf else None
    actions, q = policy.act(np.concatenate([r.obs for r in requests]), rows(lambda r: r.budget),
                            rows(lambda r: r.step_size), noise)
    answers, start = [], 0
    for request, n in zip(requests, counts, strict=True):
        a = actions[start:start + n].tolist()
        q_rows = None if q is None else q[start:start + n].tolist()
        answers.append({"action": a[0] if request.single else a,
                        "q": q_rows[0] if request.single and q_rows is not None else q_rows,
                        "budget": request.budget, "step_size": request.step_size})
        start += n
    return answers
