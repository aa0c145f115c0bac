"""Silence library messages a vgf_ray user cannot act on, so the ones that matter stay visible.

Each entry names the library logger or warning and why it is noise here:
- RLlib's "You are running <algo> on the new API stack!": every vgf_ray algorithm is new-stack by design;
- gymnasium's "Overriding environment rllib-single-agent-env-v0": RLlib re-registers its env wrapper per runner;
- RLlib's ``RLModule(config=RLModuleConfig)`` deprecation: raised inside RLlib's own learner construction;
- Tune's "Trainable.setup took N seconds ... consider reuse_actors": advice for Tune trials, printed by plain runs;
- Tune's "Install gputil for GPU system monitoring": a utilisation monitor vgf_ray does not use;
- gymnasium's "Box ... precision lowered by casting to float32": OGBench declares float64 bounds, and VGFEnv
  casts observations to float32 on purpose;
- MLflow's "Creating initial MLflow database tables" / "Updating database tables": the normal first use of a
  SQLite store;
Errors and warnings about the user's own settings are left alone.
"""

from __future__ import annotations

import logging
import warnings


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


NOISE = {
    "ray.rllib.algorithms.algorithm_config": ("on the new API stack!",),
    "ray.rllib.algorithms.sac.sac": ("on the new API stack!",),
    "ray._common.deprecation": ("RLModule(config=[RLModuleConfig object])",),
    "ray.rllib.utils.deprecation": ("RLModule(config=[RLModuleConfig object])",),
    "ray.tune.utils.util": ("Install gputil",),
    "ray.tune.trainable.trainable": ("Trainable.setup took",),
    "mlflow.store.db.utils": ("Creating initial MLflow database tables", "Updating database tables"),
}


def quiet_library_noise() -> None:
    """Install the filters in this process (idempotent); Ray workers log to their own files."""
    for name, fragments in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(*fragments))
    warnings.filterwarnings("ignore", message=r".*Box (low|high)'s precision lowered by casting to float32.*")
    warnings.filterwarnings("ignore", message=r".*Overriding environment rllib-single-agent-env-v0 already in registry")
    logging.getLogger("alembic").setLevel(logging.WARNING)
