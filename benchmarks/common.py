"""Shared set-up for the benchmark scripts: configurations, a local Ray, a small cube-single dataset."""

from __future__ import annotations

import os
import platform
import time

import torch

from vgf_ray.cluster_auth import use_token_auth

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
use_token_auth()  # before Ray is imported

# Paper config (spec 3.1/3.2, OGBench manipulation): 4x512 nets, batch 256, N=10, K=10, L_train=3.
PAPER = dict(hidden_dims=(512,) * 4, actor_hidden_dims=(512,) * 4, num_particles=10, bc_flow_steps=10,
             train_vgf_steps=3, train_q_agg="mean", discount=0.99)
# CPU config (tune_configs/ogbench/*-cpu.yaml): 2x256 nets, N=8, K=5, L_train=1.
CPU = dict(hidden_dims=(256,) * 2, actor_hidden_dims=(256,) * 2, num_particles=8, bc_flow_steps=5,
           train_vgf_steps=1, vgf_lr=0.05, train_q_agg="mean", discount=0.99)
CONFIGS = {"paper": PAPER, "cpu": CPU}
CUBE_OBS, CUBE_ACT = 28, 5


def machine() -> str:
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isa = "amx" if "amx_bf16" in flags else ("avx512_bf16" if "avx512_bf16" in flags else "no-bf16-isa")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {isa}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, device {device}")


def random_batch(batch_size: int = 256, device: str = "cpu", seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"observations": torch.randn(batch_size, CUBE_OBS, generator=g),
             "actions": torch.rand(batch_size, CUBE_ACT, generator=g) * 2 - 1,
             "rewards": -torch.rand(batch_size, generator=g),
             "next_observations": torch.randn(batch_size, CUBE_OBS, generator=g),
             "masks": torch.ones(batch_size)}
    return {k: v.to(device) for k, v in batch.items()}


def mlp_flops(rows: int, dims: list[int]) -> float:
    """Matmul FLOPs of one forward pass of an MLP with layer widths ``dims`` over ``rows`` inputs."""
    return 2.0 * rows * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def vgf_step_flops(cfg: dict, obs: int = CUBE_OBS, act: int = CUBE_ACT, batch: int = 256, critics: int = 2) -> float:
    """Matmul FLOPs of one VGF training step (backward of a layer ~ 2x its forward; input-only grads ~ 1x)."""
    n, k, steps = cfg["num_particles"], cfg["bc_flow_steps"], cfg["train_vgf_steps"]
    flow = [obs + act + 1, *cfg["actor_hidden_dims"], act]
    critic = [obs + act, *cfg["hidden_dims"], 1]
    particles = batch * n
    sampling = k * mlp_flops(particles, flow)
    transport = steps * critics * 2 * mlp_flops(particles, critic)  # forward + input-gradient pass
    target = critics * mlp_flops(particles, critic)
    training = 3 * (critics * mlp_flops(batch, critic) + mlp_flops(batch, flow))
    return sampling + transport + target + training


def matmul_tflops(dtype: torch.dtype, rows: int = 2560, width: int = 512, reps: int = 30, device: str = "cpu"
                  ) -> float:
    """Measured dense matmul throughput on this machine (the compute bound of a VGF step)."""
    x = torch.randn(rows, width, dtype=dtype, device=device)
    w = torch.randn(width, width, dtype=dtype, device=device)
    per_s = rate(lambda: x @ w, reps, warmup=5)
    return per_s * 2 * rows * width * width / 1e12


def onednn_fp32_tflops(rows: int = 2560, width: int = 512, reps: int = 30) -> float:
    """The same fp32 matmul through oneDNN (aten's fp32 matmul calls MKL, whose generic code path runs on AMD)."""
    if not torch.backends.mkldnn.is_available():
        return float("nan")
    x, w = torch.randn(rows, width), torch.randn(width, width)
    per_s = rate(lambda: torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], ""), reps, warmup=5)
    return per_s * 2 * rows * width * width / 1e12


def synchronize() -> None:
    """Wait for the GPU's queued work, so a timer measures it (a no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def check_device(name: str, parser) -> None:
    """Fail by name on a device this machine does not have, instead of timing the CPU under a GPU's label."""
    from vgf_ray.core.devices import resolve_device

    try:
        resolve_device(name)
    except ValueError as err:
        parser.error(f"--device {err}")


def rate(fn, steps: int, warmup: int = 3) -> float:
    """Calls per second of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize()
    return steps / (time.perf_counter() - start)
