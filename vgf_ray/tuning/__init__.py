"""Ray Tune sweeps of VGF experiments: search spaces, ASHA/PBT/PB2, Optuna, MLflow parent and child runs.

``spec`` checks the ``sweep`` section and builds Tune's objects, ``trial`` runs one trial on the shared run loop,
``tracking`` logs to MLflow from the driver, ``sweep`` runs and resumes, ``replay`` exports a trial as one run.
"""

from vgf_ray.tuning.replay import export_schedule
from vgf_ray.tuning.spec import SweepSpec, parse_sweep
from vgf_ray.tuning.sweep import prepare_sweep, run_sweep

__all__ = ["SweepSpec", "export_schedule", "parse_sweep", "prepare_sweep", "run_sweep"]
