"""cluster/: the launcher config passes Ray's own schema, and the KubeRay manifests agree with the experiment
they run (entrypoint parses, config valid, GPUs and CPUs match the resources section, Ray version matches)."""

import re
import shlex
from pathlib import Path

import pytest
import ray
import yaml

from vgf_ray.cli import build_parser
from vgf_ray.experiment import build_config, load_experiment

ROOT = Path(__file__).resolve().parents[1]
KUBERAY = sorted((ROOT / "cluster" / "kuberay").glob("*.yaml"))


def cluster_spec(manifest: dict) -> dict:
    return manifest["spec"]["rayClusterSpec"] if manifest["kind"] == "RayJob" else manifest["spec"]


def container_resources(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_launcher_config_passes_rays_schema():
    from ray.autoscaler._private.util import validate_config

    config = yaml.safe_load((ROOT / "cluster" / "ray-cluster-aws.yaml").read_text())
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]


def test_docker_image_uses_the_installed_ray_version():
    base = next(line for line in (ROOT / "cluster" / "Dockerfile").read_text().splitlines() if line.startswith("FROM"))
    assert f"rayproject/ray:{ray.__version__}-" in base


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifest_matches_the_installed_ray(path):
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] in ("RayJob", "RayCluster")
    assert cluster_spec(manifest)["rayVersion"] == ray.__version__


@pytest.mark.parametrize("path", KUBERAY, ids=lambda p: p.name)
def test_kuberay_manifest_turns_token_authentication_on(path):
    spec = cluster_spec(yaml.safe_load(path.read_text()))
    assert spec["authOptions"] == {"mode": "token"}
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    env = [var for group in groups for c in group["template"]["spec"]["containers"] for var in c.get("env", [])]
    assert not any(var["name"].startswith("RAY_AUTH") for var in env)  # the operator sets mode and token itself


def test_launcher_nodes_start_with_token_authentication_and_get_the_token():
    config = yaml.safe_load((ROOT / "cluster" / "ray-cluster-aws.yaml").read_text())
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("export RAY_AUTH_MODE=token;" in line for line in starts if "ray start" in line)
    assert config["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}


def test_image_keeps_authentication_on_and_builds_as_its_user():
    lines = [line.strip() for line in (ROOT / "cluster" / "Dockerfile").read_text().splitlines()
             if not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    assert "RAY_AUTH_MODE=token" in text and "disabled" not in text
    chown = next(i for i, line in enumerate(lines) if line.startswith("RUN chown ray:users /home/ray/vgf_ray"))
    install = next(i for i, line in enumerate(lines) if "pip install --no-cache-dir -e ." in line)
    assert chown < install and lines[chown + 1] == "USER ray"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "runs"} <= set(ignored)


def test_no_product_file_turns_ray_authentication_off():
    """The opt-out (an auth mode of ``disabled``) opens the Jobs API to anyone: no code, image, manifest, config or
    script of the product sets it."""
    pattern = re.compile(r"RAY_AUTH_MODE\W{0,4}disabled|authOptions\W+mode\W+(none|disabled)", re.IGNORECASE)
    roots = [ROOT / name for name in ("vgf_ray", "cluster", "tune_configs", "benchmarks", ".ci")]
    files = [f for root in roots for f in root.rglob("*") if f.is_file() and f.suffix not in (".png", ".pyc")]
    offenders = [str(f.relative_to(ROOT)) for f in files + [ROOT / ".dockerignore", ROOT / "tests" / "conftest.py"]
                 if pattern.search(f.read_text(errors="ignore"))]
    assert len(files) > 50 and not offenders, offenders


def test_rayjob_entrypoint_runs_a_valid_experiment_that_fits_the_cluster():
    manifest = yaml.safe_load((ROOT / "cluster" / "kuberay" / "rayjob.yaml").read_text())
    argv = shlex.split(manifest["spec"]["entrypoint"])
    assert argv[0] == "vgf-ray"
    args = build_parser().parse_args(argv[1:])
    exp = load_experiment(ROOT / args.config)
    build_config(exp)
    assert exp["ray"]["address"] == "auto"

    res, ev = exp["resources"], exp["evaluation"]
    groups = {g["groupName"]: g for g in cluster_spec(manifest)["workerGroupSpecs"]}
    gpu_nodes = groups["gpu-learners"]
    assert int(container_resources(gpu_nodes)["nvidia.com/gpu"]) * gpu_nodes["replicas"] >= (
        res["num_learners"] * res["num_gpus_per_learner"])
    cpu_nodes = groups["cpu-env-runners"]
    assert int(container_resources(cpu_nodes)["cpu"]) * cpu_nodes["replicas"] >= (
        res["num_env_runners"] + ev["num_env_runners"])


@pytest.mark.parametrize(("setting", "num_learners", "local_cuda", "cluster_gpus", "expected"), [
    ("auto", 0, False, 4.0, 0),   # learner in the driver process: the driver's CUDA decides
    ("auto", 0, True, 1.0, 1),
    ("auto", 1, False, 1.0, 1),   # remote learner on a GPU worker while the head has none
    ("auto", 2, False, 1.0, 0),   # not enough GPUs for every learner: CPU learners rather than a hang
    (0.5, 2, False, 1.0, 0.5),    # explicit settings are kept
])
def test_auto_learner_gpus_look_where_the_learners_run(setting, num_learners, local_cuda, cluster_gpus, expected):
    from vgf_ray.experiment import learner_gpus

    assert learner_gpus(setting, num_learners, local_cuda, cluster_gpus) == expected
