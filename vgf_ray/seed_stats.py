"""Statistics over seeds for learning studies: mean ± standard error, and the paired gain of transport.

The study's question is whether some test-time budget L > 0 beats L = 0 (best-of-N). Each seed evaluates every
budget on the same initial states, so the gain is measured per seed as a paired difference and only then averaged:
seed-to-seed variation in L = 0 itself does not enter its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for one value: no spread to estimate)."""
    values = np.asarray(list(values), dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_se needs at least one value")
    se = values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else math.nan
    return float(values.mean()), float(se)


def transport_gain(per_seed: Mapping[str, Mapping[int, float]]) -> tuple[int, float, float] | None:
    """``(L, mean, se)`` of the paired gain ``success(L) - success(0)`` over seeds, for the L > 0 with the highest
    mean gain; None when no seed has both L = 0 and some L > 0. Only budgets every seed evaluated count."""
    seeds = [results for results in per_seed.values() if 0 in results]
    if not seeds:
        return None
    common = set.intersection(*(set(results) for results in seeds)) - {0}
    if not common:
        return None
    gains = {budget: mean_se(results[budget] - results[0] for results in seeds) for budget in sorted(common)}
    best = max(gains, key=lambda budget: gains[budget][0])
    return best, *gains[best]
