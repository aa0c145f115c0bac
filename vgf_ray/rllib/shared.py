"""Pieces VGF and the RLlib baselines share: run counters kept in checkpoints, and the learner's lazy replay."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.utils.annotations import override

from vgf_ray.data.replay import OfflineOnlineReplay
from vgf_ray.data.spec import DatasetSpec, load_transitions, prepare_dataset

COUNTERS_KEY = "vgf_counters"


class CountersInState(Algorithm):
    """``self.vgf_counters`` (gradient steps, online env steps, ...) saved with and restored from checkpoints."""

    @override(Algorithm)
    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state[COUNTERS_KEY] = dict(self.vgf_counters)
        return state

    @override(Algorithm)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if COUNTERS_KEY in state:
            self.vgf_counters = dict(state[COUNTERS_KEY])


class LazyReplay:
    """A learner's ``buffer``: installed by the driver for remote learners (``install_offline_data``), read from
    the dataset file by a learner in the driver process on first use."""

    _buffer: OfflineOnlineReplay | None

    def install_offline_data(self, data: dict) -> int:
        raise NotImplementedError

    @property
    def buffer(self) -> OfflineOnlineReplay:
        if self._buffer is None:
            data, _ = load_transitions(DatasetSpec.from_dict(self.config.dataset))
            self.install_offline_data(data)
        return self._buffer


def resolve_dataset(config) -> None:
    """Generate or resolve the dataset once on the driver (a concrete path in the config), so learners only read."""
    spec = prepare_dataset(DatasetSpec.from_dict(config.dataset))
    if config.dataset != spec.to_dict():
        config._is_frozen = False
        config.dataset = spec.to_dict()
        config.freeze()
