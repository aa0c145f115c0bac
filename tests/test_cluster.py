"""cluster/: the launcher config passes Ray's own schema, and the KubeRay manifests agree with the experiment
they run (entrypoint parses, config valid, GPUs and CPUs match the resources section, Ray version matches)."""

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
