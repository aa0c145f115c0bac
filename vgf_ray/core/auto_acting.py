"""``acting: auto``: act through the fused function until compiling it would pay for itself, then keep whichever
of the two paths measured faster.

A compiled graph costs seconds to a minute to build on a CPU, and it is not always faster once built (on an
H200, one observation at L = 0 compiled ran 0.9x the fused path's speed, at L = 3 2.7x). Whether it pays depends
on the run at hand: how often this process acts at this shape, and how much each call gains. The rule is ski
rental: add up the time the fused path spends per call signature (batch shape, budget, dtype, selection); once
that reaches what a compile is expected to cost, compile, time a few compiled calls against the fused ones, and
keep the faster path for that signature. A process never spends more than about twice what the better fixed
choice would have cost it, and one that acts briefly (a test, a short evaluation) never compiles at all.

The expected compile cost starts at ``COMPILE_COST_PRIOR_S`` and is replaced by each compile's measured cost,
so the first compile in a process (which also warms up the compiler itself) sets the price of the later ones.
Both paths compute the same numbers (tested to 1e-5 in fp32); ``acting: fused`` or ``compiled`` fix the path
where an evaluation must repeat bit for bit.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from vgf_ray.core.fused_acting import FusedActor, fused_act, fused_act_max
from vgf_ray.core.transport import TransportBudget

FUSED, COMPILED = "fused", "compiled"
# Seconds a compile is expected to cost before one was measured in this process (CPU, 2x256 nets: 10-40 s).
COMPILE_COST_PRIOR_S = 20.0
# Compiled calls timed after the compiling one before the choice is made; their median is compared with the
# median of the last fused calls.
TRIAL_CALLS = 5
RECENT_CALLS = 16


@dataclass
class SignatureState:
    """What the rule knows about one call signature: rent paid so far, recent call times, the choice once made."""

    fused_seconds: float = 0.0
    fused_times: deque = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    compiled_times: list = field(default_factory=list)
    choice: str | None = None


class AutoActor:
    """The ``FusedActor`` interface (``act``, ``particles``, ``is_compiled``) over a fused and a compiled actor,
    choosing per call signature by the ski-rental rule above."""

    def __init__(self, compile_options: dict | None = None, compile_cost_prior_s: float = COMPILE_COST_PRIOR_S,
                 clock: Callable[[], float] = time.perf_counter):
        self.paths: dict[str, FusedActor] = {FUSED: FusedActor(False), COMPILED: FusedActor(True, compile_options)}
        self.compile_cost_s = compile_cost_prior_s
        self.clock = clock
        self.states: dict[tuple, SignatureState] = {}

    def choices(self) -> dict[tuple, str | None]:
        """Each signature's chosen path (None while still undecided)."""
        return {key: state.choice for key, state in self.states.items()}

    def is_compiled(self, function=fused_act) -> bool:
        return self.paths[COMPILED].is_compiled(function)

    def act(self, nets, obs: torch.Tensor, budget: TransportBudget, selection: str | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        key = ("act", selection or nets.hp.eval_particle_select, *_signature(nets, obs, budget))
        return self._call(key, lambda actor: actor.act(nets, obs, budget, selection, generator))

    def particles(self, nets, obs: torch.Tensor, budget: TransportBudget, generator: torch.Generator | None = None,
                  with_q: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = ("particles", with_q, *_signature(nets, obs, budget))
        return self._call(key, lambda actor: actor.particles(nets, obs, budget, generator, with_q))

    def _call(self, key: tuple, run: Callable[[FusedActor], object]):
        state = self.states.setdefault(key, SignatureState())
        if state.choice is not None:
            return run(self.paths[state.choice])
        renting = state.fused_seconds < self.compile_cost_s or len(state.fused_times) < TRIAL_CALLS
        if renting and not state.compiled_times:
            result, seconds = self._timed(run, self.paths[FUSED])
            state.fused_seconds += seconds
            state.fused_times.append(seconds)
            return result
        return self._trial(state, run)

    def _trial(self, state: SignatureState, run: Callable[[FusedActor], object]):
        """A compiled call while the rule is deciding: the first one's time (less a fused call's) is the compile's
        cost; after ``TRIAL_CALLS`` more the faster median wins."""
        result, seconds = self._timed(run, self.paths[COMPILED])
        compiled = self.paths[COMPILED]
        if not any(compiled.is_compiled(f) for f in (fused_act, fused_act_max)):  # the compiler fell back
            state.choice = FUSED
        elif not state.compiled_times and seconds > 0:
            self.compile_cost_s = max(seconds - statistics.median(state.fused_times), 0.0)
            state.compiled_times.append(None)  # the compiling call: not a steady-state time
        else:
            state.compiled_times.append(seconds)
            steady = [t for t in state.compiled_times if t is not None]
            if len(steady) >= TRIAL_CALLS:
                faster = statistics.median(steady) < statistics.median(state.fused_times)
                state.choice = COMPILED if faster else FUSED
        return result

    def _timed(self, run: Callable[[FusedActor], object], actor: FusedActor) -> tuple[object, float]:
        start = self.clock()
        result = run(actor)
        first = result[0] if isinstance(result, tuple) else result
        if first.device.type == "cuda":  # the time of the work, not of its launch
            torch.cuda.synchronize(first.device)
        return result, self.clock() - start


def _signature(nets, obs: torch.Tensor, budget: TransportBudget) -> tuple:
    """What makes a different compiled graph: shapes, device, dtype, the budget's steps and step size, per-row or
    not, and the networks' transport settings."""
    hp = nets.hp
    return (tuple(obs.shape), obs.device.type, hp.acts_in_bf16(obs.device), hp.bf16_on(obs.device), budget.steps,
            budget.step_size, budget.row_steps is not None, id(nets.transport_settings))
