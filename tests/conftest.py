"""Shared fixtures: one Ray session per test run (127.0.0.1 only, no dashboard), small generated datasets."""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# Ray's token authentication on in every test (as vgf-ray runs), with the test run's own token: Ray reads it from
# RAY_AUTH_TOKEN_PATH, so nothing is written to ~/.ray. Set before anything imports Ray, which reads it once.
_AUTH_DIR = tempfile.mkdtemp(prefix="vgf-ray-auth-")
atexit.register(shutil.rmtree, _AUTH_DIR, ignore_errors=True)
TOKEN_FILE = Path(_AUTH_DIR) / "auth_token"
TOKEN_FILE.write_text(secrets.token_hex(32))
os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(TOKEN_FILE))
os.environ.pop("RAY_AUTH_TOKEN", None)

# Fuzz tests (test_fuzz_*.py): a fixed corpus in CI, ten times as many fresh cases with HYPOTHESIS_PROFILE=deep.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("deep", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data")
    os.environ["VGF_RAY_DATA_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def pointmaze_npz(data_dir) -> Path:
    """A 600-transition pointmaze-medium-navigate dataset in OGBench's format (about a second to make)."""
    from vgf_ray.data.ogbench_generate import ensure_ogbench_dataset

    return ensure_ogbench_dataset("pointmaze-medium-navigate", 600, data_dir, seed=0, episode_length=201,
                                  progress=False)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    temp = tempfile.mkdtemp(prefix="vgfray")  # short: Ray's socket paths must fit in 107 bytes, under any TMPDIR
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=1 << 29, _temp_dir=temp, log_to_driver=False)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
