"""VGF hyperparameters with the authors' defaults (spec 3.1), validated in one place."""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from vgf_ray.errors import ConfigError

ENSEMBLE_AGGS = ("min", "mean")
PARTICLE_AGGS = ("mean", "max")
SELECTIONS = ("max", "softmax", "random")
STEP_RULES = ("adam", "euler")
VARIANTS = ("vgf", "avgf")
# How acting computes: "fused" (closed-form gradients, no autograd; vgf_ray.core.fused_acting), "compiled" (the
# fused function under torch.compile, falling back to "fused"), "eager" (autograd; the reference), "auto" (fused,
# then compiled per call signature where compiling pays for itself in the process: vgf_ray.core.auto_acting).
AUTO_PATH = "auto"
FIXED_PATHS = ("fused", "compiled", "eager")
ACTING_PATHS = (AUTO_PATH, *FIXED_PATHS)
# The TD target's transport takes the fixed paths, or "auto": "fused" on a GPU and in fp32 on a CPU with oneDNN,
# "eager" in bf16 on a CPU (vgf_ray.core.vgf.auto_target_transport). Decided from the device, not from timings,
# so a run's training numbers repeat and resume exactly.
TARGET_TRANSPORT_PATHS = (AUTO_PATH, *FIXED_PATHS)
BF16_AUTO = "auto"
# The keys that take one of a few words, and those words.
HPARAM_CHOICES = {
    "train_q_agg": ENSEMBLE_AGGS,
    "vgf_q_agg": ENSEMBLE_AGGS,
    "train_particle_select": PARTICLE_AGGS,
    "eval_particle_select": SELECTIONS,
    "step_rule": STEP_RULES,
    "variant": VARIANTS,
    "acting": ACTING_PATHS,
    "target_transport": TARGET_TRANSPORT_PATHS,
}


@functools.cache
def bf16_native(device_type: str) -> bool:
    """Whether bf16 matmuls have native kernels on this kind of device: a CUDA GPU with bf16, or a CPU whose oneDNN
    has bf16 kernels (AVX-512 or AMX). Elsewhere (an AVX2-only CPU) aten falls back to a reference GEMM, measured
    30-45x slower than fp32 on an AMD EPYC without AVX-512."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@functools.cache
def _warn_slow_bf16(device_type: str) -> None:
    warnings.warn(f"bf16 is on, but this {device_type} has no native bf16 matmul kernels (no AVX-512 or AMX on a "
                  "CPU): its matmuls run many times slower than fp32. Set training.bf16: auto (bf16 only where it "
                  "is native) or false.", stacklevel=3)


@dataclass
class VGFHyperParams:
    """Every knob of the VGF update and of acting. Names follow the authors' config keys where they exist."""

    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)  # critic (value_hidden_dims)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)  # behavior flow
    critic_layer_norm: bool = True  # layer norm in the critic's hidden layers
    actor_layer_norm: bool = False  # layer norm in the behavior flow's hidden layers
    num_critics: int = 2  # critic ensemble size (a twin critic: 2)
    value_lr: float = 3e-4  # the critic's Adam learning rate
    actor_lr: float = 3e-4  # the behavior flow's Adam learning rate
    discount: float = 0.99  # TD discount gamma (0: reward regression, no bootstrap)
    tau: float = 0.005  # Polyak rate of the target critic
    target_update_before_step: bool = True  # authors' one-step lag (spec 6.9); False = FQL convention
    train_q_agg: str = "min"  # ensemble aggregation of the TD target and of the acting particle's choice: min or mean
    vgf_q_agg: str = "mean"  # ensemble aggregation whose action-gradient moves the particles: mean or min
    train_particle_select: str = "mean"  # how the TD target reduces its N particles' Q: mean or max
    eval_particle_select: str = "max"  # which moved particle acts: max (highest Q), softmax or random
    softmax_temp: float = 1.0  # temperature of the softmax particle choice
    bc_flow_steps: int = 10  # Euler steps of the behavior flow's sampler
    num_particles: int = 10  # N, behavior samples per state, for acting and for the TD target
    train_vgf_steps: int = 1  # L_train, transport steps of the TD target's particles (the training budget)
    vgf_lr: float = 0.1  # transport step size epsilon
    vgf_alpha: float = 1.0  # SVGD's alpha: the critic's gradient enters the velocity divided by it
    step_rule: str = "adam"  # paper's plain Euler step: "euler"
    repulsion: bool = True  # SVGD's kernel repulsion between particles (False: the kernel-smoothed gradient alone)
    bandwidth_grad: bool = True  # differentiate the repulsion through the median bandwidth, as the authors do
    variant: str = "vgf"  # "avgf": amortized gradient network instead of autodiff + kernel
    grad_clip_norm: float | None = None  # A-VGF clips every module's gradients at 1.0
    q_grad_norm: bool = False  # A-VGF: normalize the gradient-network target to unit norm
    # bf16 autocast for behavior sampling, transport and the target critic: true, false, or auto (bf16 only on a
    # device with native bf16 matmuls, see bf16_native; fp32 elsewhere).
    bf16: bool | str = False
    # Acting's dtype, if not bf16's: one observation's matmuls at 2x256 widths are no faster in bf16 on a CPU, and
    # the casts cost more, while the learner's batch gains from bf16.
    acting_bf16: bool | None = None
    acting: str = AUTO_PATH  # see ACTING_PATHS
    # The same choice for the TD target's transport (fused particles, then the target critic's Q); see
    # TARGET_TRANSPORT_PATHS.
    target_transport: str = "auto"

    def bf16_on(self, device: torch.device) -> bool:
        """Whether the learner's paths run in bf16 on ``device`` (``auto`` resolved there)."""
        return _resolve_bf16(self.bf16, device)

    def acts_in_bf16(self, device: torch.device) -> bool:
        """Whether acting runs in bf16 on ``device``: ``acting_bf16``, else as ``bf16``."""
        return _resolve_bf16(self.bf16 if self.acting_bf16 is None else self.acting_bf16, device)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad key."""
        self._check_choices()
        self._check_numbers()
        if self.bf16 not in (True, False, BF16_AUTO):
            raise ConfigError(f"bf16 must be true, false or auto, got {self.bf16!r}")
        if self.acting_bf16 not in (None, True, False, BF16_AUTO):
            raise ConfigError(f"acting_bf16 must be true, false, auto or null (as bf16), got {self.acting_bf16!r}")
        for key in ("hidden_dims", "actor_hidden_dims"):
            dims = getattr(self, key)
            if not dims or any(int(d) < 1 for d in dims):
                raise ConfigError(f"{key} must be a non-empty list of positive widths, got {dims!r}")

    def _check_choices(self) -> None:
        for key, allowed in HPARAM_CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}={getattr(self, key)!r} is not one of {allowed}")

    def _check_numbers(self) -> None:
        for key, minimum in (("num_particles", 1), ("bc_flow_steps", 1), ("num_critics", 1), ("train_vgf_steps", 0)):
            value = getattr(self, key)
            if not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
        if self.vgf_lr < 0:
            raise ConfigError(f"vgf_lr must be >= 0, got {self.vgf_lr!r}")
        for key in ("value_lr", "actor_lr", "vgf_alpha", "softmax_temp"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be > 0, got {getattr(self, key)!r}")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"discount must be in [0, 1], got {self.discount!r}")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"tau must be in (0, 1], got {self.tau!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VGFHyperParams:
        """Build from a plain dict (YAML, RLlib model_config), rejecting unknown keys by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown VGF hyperparameter(s) {unknown}; known keys: {sorted(known)}")
        values = dict(values)
        for key in ("hidden_dims", "actor_hidden_dims"):
            if key in values:
                values[key] = tuple(int(d) for d in values[key])
        hp = cls(**values)
        hp.validate()
        return hp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve_bf16(setting: bool | str, device: torch.device) -> bool:
    if setting == BF16_AUTO:
        return bf16_native(device.type)
    if setting and not bf16_native(device.type) and device.type != "meta":
        _warn_slow_bf16(device.type)
    return bool(setting)
