"""Pieces VGF and the RLlib baselines share: run counters kept in checkpoints, the offline dataset sent to remote
learners, one update round on every learner, and the learner's lazy replay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import FAULT_TOLERANCE_STATS, LEARNER_RESULTS
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from vgf_ray.data.replay import OfflineOnlineReplay
from vgf_ray.data.spec import DatasetSpec, load_transitions, prepare_dataset
from vgf_ray.envs import ENV_CHOICE_KEYS, VGFEnv
from vgf_ray.metrics import (
    ALL_MODULES,
    ENV_RUNNERS,
    GRAD_STEPS_LIFETIME,
    MODULE_ID,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_EPISODES_LIFETIME,
    NUM_GRAD_STEPS,
    NUM_MODULE_STEPS_TRAINED,
    ONLINE_ENV_STEPS_LIFETIME,
    PHASE,
    PHASE_DONE,
    PHASE_OFFLINE,
    PHASE_ONLINE,
)
from vgf_ray.rllib.compat import learner_device, unfrozen

COUNTERS_KEY = "vgf_counters"


class OfflineDataConfig(AlgorithmConfig):
    """The config half of the scaffold: the settings every offline-data algorithm shares, and an ``env_config``
    that names an env replacing the default one (RLlib deep-merges ``env_config``, which would keep the default's
    ``ogbench`` task beside a new ``gym_id``)."""

    def init_offline_data(self, eval_budgets: tuple[int, ...], evaluate: Callable) -> None:
        """Defaults for the dataset, the phases' step counts and the evaluation at ``eval_budgets`` (by
        ``evaluate``, RLlib's ``custom_evaluation_function``)."""
        self.dataset: dict[str, Any] = DatasetSpec().to_dict()  # the offline data (the `dataset` section's keys)
        self.offline_steps: int | None = None  # None: offline training only, forever
        self.updates_per_iteration = 1000  # gradient steps per train() call in the offline phase
        self.online_env_steps = 0  # env steps collected by the EnvRunners after the offline phase
        self.eval_budgets: list[int] = list(eval_budgets)  # test-time transport steps L evaluated every round
        self.train_batch_size_per_learner = 256
        self.env = VGFEnv
        self.env_config = {"ogbench": "cube-single-play", "success_timing": "post"}
        self.evaluation_interval = 1
        self.evaluation_duration = 10
        self.evaluation_duration_unit = "episodes"
        self.custom_evaluation_function = evaluate

    @override(AlgorithmConfig)
    def environment(self, *args, env_config=NotProvided, **kwargs):
        if isinstance(env_config, dict) and set(ENV_CHOICE_KEYS) & set(env_config):
            self.env_config = {}
        return super().environment(*args, env_config=env_config, **kwargs)


@dataclass
class RunCounters:
    """What a run has done, saved in its checkpoints: the phases, the update-to-data ratio and the budget
    schedule are read from these."""

    grad_steps: int = 0
    online_env_steps: int = 0
    utd_carry: float = 0.0  # online gradient steps owed but not yet taken (a fractional utd_ratio carries over)
    learner_restarts: int = 0  # remote learner groups rebuilt after losing a learner

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunCounters:
        """From a checkpoint's counters; a counter an older checkpoint lacks starts at its default."""
        return cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})


class OfflineDataAlgorithm(Algorithm):
    """The scaffold VGF and every baseline build on: the dataset resolved once on the driver and sent once to
    remote learners, ``vgf_counters`` (a ``RunCounters``) saved with and restored from checkpoints, the offline
    phase in ``updates_per_iteration`` chunks up to ``offline_steps``, an update round on every learner, and the
    run counters every iteration reports."""

    @override(Algorithm)
    def setup(self, config) -> None:
        resolve_dataset(config)
        self.vgf_counters = RunCounters()
        self._learners_have_data = False
        super().setup(config)

    def phase(self) -> int:
        """Offline until ``offline_steps`` gradient steps (forever when None), then online until
        ``online_env_steps`` env steps (none for the baselines), then done."""
        config, counters = self.config, self.vgf_counters
        if config.offline_steps is None or counters.grad_steps < config.offline_steps:
            return PHASE_OFFLINE
        if counters.online_env_steps < config.online_env_steps:
            return PHASE_ONLINE
        return PHASE_DONE

    def offline_chunk(self) -> int:
        """Gradient steps of this iteration's offline round: ``updates_per_iteration``, or what is left of
        ``offline_steps``."""
        steps = self.config.updates_per_iteration
        if self.config.offline_steps is not None:
            steps = min(steps, self.config.offline_steps - self.vgf_counters.grad_steps)
        return steps

    def log_run_counters(self, phase: int) -> None:
        """The phase and the lifetime counters, in every iteration's results."""
        self.metrics.log_value(PHASE, phase, window=1)
        self.metrics.log_value(GRAD_STEPS_LIFETIME, self.vgf_counters.grad_steps, window=1)
        self.metrics.log_value(ONLINE_ENV_STEPS_LIFETIME, self.vgf_counters.online_env_steps, window=1)

    def _send_dataset_to_learners(self) -> None:
        """Remote learners get the offline transitions through the object store, not the file path: on a
        cluster the dataset lives on the driver's node only. A learner in the driver process reads the file."""
        if self._learners_have_data:
            return
        if self.learner_group.is_remote:
            data, info = load_transitions(DatasetSpec.from_dict(self.config.dataset))
            ref = ray.put(data)
            del data
            for result in self.learner_group.foreach_learner(
                lambda learner, r=ref, s=info["reward_scale"]: learner.install_offline_data(ray.get(r), s)
            ):
                if not result.ok:
                    raise result.get()
        self._learners_have_data = True

    def _learner_round(self, update: Callable[[Any], dict]) -> None:
        """``update(learner)`` on every learner (raising the first failure); their metrics into the results."""
        results = []
        for result in self.learner_group.foreach_learner(update):
            if not result.ok:
                raise result.get()
            results.append(result.get())
        self.metrics.aggregate(results, key=LEARNER_RESULTS)

    @override(Algorithm)
    def step(self) -> dict:
        """RLlib's ``step`` with its standard counters where an offline iteration has none (``with_rllib_counters``)."""
        return with_rllib_counters(super().step(), self.vgf_counters.online_env_steps)

    @override(Algorithm)
    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state[COUNTERS_KEY] = self.vgf_counters.to_dict()
        return state

    @override(Algorithm)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if COUNTERS_KEY in state:
            self.vgf_counters = RunCounters.from_dict(state[COUNTERS_KEY])


# What RLlib reports under FAULT_TOLERANCE_STATS about its EnvRunners.
FAULT_TOLERANCE_KEYS = ("num_healthy_workers", "num_remote_worker_restarts", "num_env_runners_dropped_lifetime")


def with_rllib_counters(results: dict, env_steps_sampled: int) -> dict:
    """``results`` with RLlib's standard counters: an ``env_runners`` block even where nothing was sampled (offline
    iterations: the env steps sampled so far, no episodes), and the transitions trained on so far at the top level,
    where Tune's console looks for them; the EnvRunners' fault-tolerance counts where there are no EnvRunners."""
    results.setdefault(ENV_RUNNERS, {NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps_sampled, NUM_EPISODES_LIFETIME: 0})
    # An offline algorithm without training EnvRunners (the baselines, as RLlib builds them) has none to report.
    results.setdefault(FAULT_TOLERANCE_STATS, dict.fromkeys(FAULT_TOLERANCE_KEYS, 0))
    trained = results.get(LEARNER_RESULTS, {}).get(ALL_MODULES, {}).get(NUM_ENV_STEPS_TRAINED_LIFETIME, 0)
    results[NUM_ENV_STEPS_TRAINED_LIFETIME] = int(trained)
    return results


def learner_rank() -> int:
    """This learner's rank among data-parallel learners (0 when it is the only one)."""
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def log_update_round(metrics: MetricsLogger, num_steps: int, batch_size: int) -> None:
    """A learner's counters for one round of ``num_steps`` updates on ``batch_size``-transition minibatches, where
    RLlib's learners log theirs: ``learners/__all_modules__`` (gradient steps, transitions trained on, summed over
    learners as RLlib does) and the module's own trained-steps count. Gradient steps are counted on rank 0 only:
    data-parallel learners take the same steps together."""
    if learner_rank() == 0:
        metrics.log_value((ALL_MODULES, NUM_GRAD_STEPS), num_steps, reduce="sum")
        metrics.log_value((ALL_MODULES, GRAD_STEPS_LIFETIME), num_steps, reduce="lifetime_sum")
    trained = num_steps * batch_size
    metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED), trained, reduce="sum")
    metrics.log_value((ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), trained, reduce="lifetime_sum")
    metrics.log_value((MODULE_ID, NUM_MODULE_STEPS_TRAINED), trained, reduce="sum")


RNG_STATE_KEY = "vgf_rng_state"  # a learner's sampling RNG in its checkpointed state
LEGACY_RNG_STATE_KEYS = ("baseline_rng_state",)  # where older baseline checkpoints kept it


class OfflineDataLearner:
    """The learner half of the scaffold, mixed in before RLlib's learner class: its ``buffer`` (installed by the
    driver for remote learners, read from the dataset file by a learner in the driver process on first use) and
    its minibatch-sampling RNG, one stream per rank, saved in its state. Call ``init_sampling()`` in ``build``."""

    _buffer: OfflineOnlineReplay | None
    rng_stream = 0  # separates one learner class's sampling stream from another's at the same seed

    def install_offline_data(self, data: dict, reward_scale: float = 1.0) -> int:
        """Take the (already scaled) offline transitions; ``reward_scale`` is the dataset's reward factor, which
        online rewards get too."""
        raise NotImplementedError

    @property
    def buffer(self) -> OfflineOnlineReplay:
        if self._buffer is None:
            data, info = load_transitions(DatasetSpec.from_dict(self.config.dataset))
            self.install_offline_data(data, info["reward_scale"])
        return self._buffer

    def init_sampling(self) -> None:
        self._buffer = None  # loaded on first use: evaluation needs no dataset
        self.rng = torch.Generator(device=learner_device(self))
        self.reseed(0)

    def reseed(self, restarts: int) -> None:
        """The sampling RNG of this rank; a rebuilt learner group (``restarts``) draws a new stream per rank, since
        every learner took one survivor's state."""
        self.rng.manual_seed(int(self.config.seed or 0) * 1000 + self.rng_stream + learner_rank() + 7919 * restarts)

    def get_state(self, *args, **kwargs) -> dict[str, Any]:
        state = super().get_state(*args, **kwargs)
        state[RNG_STATE_KEY] = self.rng.get_state()  # step counters live in the algorithm's state
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        for key in (RNG_STATE_KEY, *LEGACY_RNG_STATE_KEYS):
            if key in state:
                self.rng.set_state(state[key])
                break


def resolve_dataset(config) -> None:
    """Generate or resolve the dataset once on the driver (a concrete path in the config), so learners only read."""
    spec = prepare_dataset(DatasetSpec.from_dict(config.dataset))
    if config.dataset != spec.to_dict():
        with unfrozen(config):
            config.dataset = spec.to_dict()
