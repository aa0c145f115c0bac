"""VGF's acting rule without autograd: behavior sampling, transport and selection as plain tensor algebra.

Acting one observation is per-op overhead, not arithmetic (the weights fit in cache), so this path removes ops:
- the critic's action-gradient is written out in closed form (Linear -> LayerNorm -> ReLU backward), so the
  transport records no autograd tape;
- the observation's share of every first layer (critic and behavior flow) is computed once per call, not
  once per flow or transport step;
- the RBF kernel's repulsion, including the gradient through the median bandwidth, is closed form;
- weights are packed (split, transposed, cast) once per weight change, not on every call.

The numbers are those of ``VGFNetworks.act`` (tested: transport to 1e-5 in fp32, the same particle chosen).
The median's gradient goes to the two middle entries of the eager path's stable sort, so ties between the
symmetric distances d_ij = d_ji resolve as there, on every device and under the compiler. ``torch.compile`` of
the whole function is an option (``compile=True``) that falls back to this eager version where the compiler is
unavailable.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vgf_ray.core.networks import LAYER_NORM_EPS
from vgf_ray.core.transport import (
    ADAM_BETA1,
    ADAM_BETA2,
    ADAM_EPS,
    TransportBudget,
    freeze_finished_rows,
    median_positions,
    select_particle,
    stable_median,
)

COMPILE_FALLBACK = "vgf_ray's compiled transport falls back to the fused path"  # the warning's start, when it does


@dataclass
class LayerPack:
    weight: torch.Tensor  # [E, in, out] (critic) or [in, out] (behavior)
    bias: torch.Tensor
    ln_weight: torch.Tensor | None = None
    ln_bias: torch.Tensor | None = None
    # oneDNN-packed fp32 weights per ensemble member (one for the behavior): ``a @ weight`` and, for the critic's
    # input-gradient, ``g @ weight^T``. None where aten's matmul is used.
    onednn: list[torch.Tensor] | None = None
    onednn_t: list[torch.Tensor] | None = None
    member_biases: list[torch.Tensor] | None = None  # the critic's bias per member, for oneDNN's per-member calls


@dataclass
class WeightPack:
    """Weights of one weight version in the layout the fused path wants; rebuilt when a parameter changes."""

    critic: list[LayerPack]
    critic_obs: torch.Tensor  # [E, obs_dim, H0]: the observation rows of the critic's first layer
    critic_act: torch.Tensor  # [E, act_dim, H0]
    critic_act_t: torch.Tensor  # [E, H0, act_dim]: for the input-gradient
    critic_head_t: torch.Tensor  # [E, 1, H_last]: the output layer, fp32
    behavior: list[LayerPack]
    behavior_obs: torch.Tensor  # [obs_dim, H0]
    behavior_act: torch.Tensor  # [act_dim, H0]
    behavior_time: torch.Tensor  # [H0]
    version: tuple


# Under torch.compile, a matmul with an inner or outer dimension this small (the action's 5 columns, the critic's
# one output) is written as a broadcast product and sum, which the compiler fuses into the neighbouring
# elementwise kernel; as a BLAS call it costs more in call overhead than in arithmetic.
SMALL_MATMUL_DIM = 16


def _mm(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ w (+ bias)`` in the weights' dtype with an fp32 result; no cast ops at all in fp32."""
    batched = w.dim() == 3
    if min(w.shape[-2:]) <= SMALL_MATMUL_DIM and torch.compiler.is_compiling():
        out = (a.float().unsqueeze(-1) * (w.float().unsqueeze(-3) if batched else w.float())).sum(-2)
        return out if bias is None else out + bias
    if w.dtype == torch.float32:
        if bias is None:
            return torch.bmm(a, w) if batched else a @ w
        if batched:
            return torch.baddbmm(bias, a, w)
        if bias.dim() == 3:  # a bias per leading index (one observation's share for its particles): [B, 1, out]
            return torch.baddbmm(bias, a, w.expand(a.shape[0], -1, -1))
        return torch.addmm(bias, a.reshape(-1, a.shape[-1]), w).view(*a.shape[:-1], w.shape[-1])
    out = (torch.bmm(a.to(w.dtype), w) if batched else a.to(w.dtype) @ w).float()
    return out if bias is None else out + bias


# fp32 matmuls on the CPU: aten calls MKL, which takes its generic code path on this project's AMD machines and
# reaches less than half of what oneDNN's AVX-512 kernels do (docs: Design); above this much work
# (rows x in x out) oneDNN's packed matmul is the faster call, below it MKL's lower call cost wins (one
# observation's 8 particles at width 256).
ONEDNN_MIN_WORK = 1 << 20


def _onednn_pack(w_out_in: torch.Tensor, rows_hint: int) -> torch.Tensor | None:
    """``w [out, in]`` in oneDNN's blocked layout for ``a @ w.T``, or None where oneDNN can't take it."""
    if w_out_in.device.type != "cpu" or w_out_in.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(w_out_in.contiguous(), rows_hint)
    except (RuntimeError, AttributeError):  # a build without the op: aten's matmul
        return None


def _onednn_layers(layer: LayerPack, rows_hint: int, backward: bool) -> None:
    """Fill ``layer.onednn`` (and ``onednn_t`` for the critic's input-gradient) when every member packs."""
    members = [layer.weight] if layer.weight.dim() == 2 else list(layer.weight)
    forward = [_onednn_pack(w.T, rows_hint) for w in members]
    back = [_onednn_pack(w, rows_hint) for w in members] if backward else []
    if all(p is not None for p in forward + back):
        layer.onednn, layer.onednn_t = forward, (back or None)
        if layer.weight.dim() == 3:
            layer.member_biases = [b.reshape(-1).contiguous() for b in layer.bias]


def _dense(a: torch.Tensor, layer: LayerPack, bias: bool = False, transposed: bool = False, relu: bool = False
           ) -> torch.Tensor:
    """``a @ W (+ the layer's bias) (then ReLU)``, or ``a @ W^T`` with ``transposed``, for a layer's weight ``W``:
    through oneDNN's packed weights where they exist and the call is big enough (bias and ReLU fused into the
    matmul there: each separate op costs more in dispatch than in arithmetic at acting's size), else ``_mm``."""
    packed = layer.onednn_t if transposed else layer.onednn
    batched = layer.weight.dim() == 3
    out_dim = layer.weight.shape[-2] if transposed else layer.weight.shape[-1]
    if packed is not None and a.numel() // len(packed) * out_dim >= ONEDNN_MIN_WORK:
        linear, post_op = torch.ops.mkldnn._linear_pointwise, "relu" if relu else "none"
        if not batched:
            return linear(a, packed[0], layer.bias if bias else None, post_op, [], "")
        biases = layer.member_biases if bias else [None] * len(packed)
        return torch.stack([linear(member, w, b, post_op, [], "")
                            for member, w, b in zip(a.unbind(0), packed, biases)])
    out = _mm(a, layer.weight.transpose(-1, -2) if transposed else layer.weight, layer.bias if bias else None)
    return F.relu(out) if relu else out


def pack_weights(nets, dtype: torch.dtype = torch.float32, version: tuple = (), onednn: bool = False) -> WeightPack:
    """Split the first layers by input (observation / action / time) and transpose what the backward needs; with
    ``onednn`` the hidden layers' fp32 weights are also packed for oneDNN (the eager fused path's matmuls)."""
    obs_dim, act_dim = nets.obs_dim, nets.act_dim
    critic = nets.critic
    layers = []
    hidden = len(critic.weights) - 1
    for i, (w, b) in enumerate(zip(critic.weights, critic.biases)):
        ln = (critic.ln_weights[i].detach(), critic.ln_biases[i].detach()) if critic.layer_norm and i < hidden \
            else (None, None)
        layers.append(LayerPack(w.detach().to(dtype), b.detach(), *ln))
    first = layers[0].weight
    beh_layers = []
    modules = list(nets.behavior.velocity_net.net)
    linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
    norms = [m for m in modules if isinstance(m, torch.nn.LayerNorm)]
    for i, lin in enumerate(linears):
        ln = (norms[i].weight.detach(), norms[i].bias.detach()) if norms and i < len(linears) - 1 else (None, None)
        beh_layers.append(LayerPack(lin.weight.detach().T.contiguous().to(dtype), lin.bias.detach(), *ln))
    beh_first = beh_layers[0].weight
    if onednn and dtype == torch.float32:
        rows_hint = nets.hp.num_particles  # one observation's particles: acting's usual call
        for layer in layers[1:-1]:
            _onednn_layers(layer, rows_hint, backward=True)
        for layer in beh_layers[1:-1]:
            _onednn_layers(layer, rows_hint, backward=False)
    return WeightPack(
        critic=layers, critic_obs=first[:, :obs_dim], critic_act=first[:, obs_dim:].contiguous(),
        critic_act_t=first[:, obs_dim:].transpose(1, 2).contiguous(),
        critic_head_t=critic.weights[-1].detach().float().transpose(1, 2).contiguous(), behavior=beh_layers,
        behavior_obs=beh_first[:obs_dim], behavior_act=beh_first[obs_dim:obs_dim + act_dim].contiguous(),
        behavior_time=beh_first[obs_dim + act_dim].float(), version=version)


def _normalise(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LayerNorm without affine, returning what its backward needs: (normalised, mean, 1/sigma)."""
    return torch.native_layer_norm(z, z.shape[-1:], None, None, LAYER_NORM_EPS)


def behavior_sample(pack: WeightPack, obs: torch.Tensor, noise: torch.Tensor, flow_steps: int,
                    low: float, high: float) -> torch.Tensor:
    """Euler sampling of the flow from ``noise [B, N, d]``; the observation projection is computed once."""
    first, rest = pack.behavior[0], pack.behavior[1:]
    obs_proj = _mm(obs, pack.behavior_obs, first.bias)  # [B, H0]
    # The observation's and the flow time's share of the first layer, for every flow step at once: [K, B, 1, H0].
    times = torch.arange(flow_steps, device=obs.device, dtype=obs_proj.dtype) / flow_steps
    first_shares = torch.addcmul(obs_proj.unsqueeze(0), times[:, None, None], pack.behavior_time).unsqueeze(-2)
    x = noise
    for share in first_shares.unbind(0):
        z = _mm(x, pack.behavior_act, share)
        if first.ln_weight is not None:
            z = F.layer_norm(z, z.shape[-1:], first.ln_weight, first.ln_bias, LAYER_NORM_EPS)
        h = F.relu(z)
        for j, layer in enumerate(rest):
            if j == len(rest) - 1:
                z = _dense(h, layer, bias=True)
            elif layer.ln_weight is None:
                h = _dense(h, layer, bias=True, relu=True)
            else:
                z = _dense(h, layer, bias=True)
                h = F.relu(F.layer_norm(z, z.shape[-1:], layer.ln_weight, layer.ln_bias, LAYER_NORM_EPS))
        x = torch.add(x, z, alpha=1.0 / flow_steps)
    return x.clamp(low, high)


def layer_norm_input_grad(grad: torch.Tensor, pre_norm: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor
                          ) -> torch.Tensor:
    """LayerNorm's input gradient in closed form, from the gradient at its normalised output: plain ops that
    TorchScript and ONNX take (the fused op is ~6x faster, so acting uses it everywhere else)."""
    normed = (pre_norm - mean) * rstd
    centred = grad - grad.mean(-1, keepdim=True)
    return (centred - normed * (grad * normed).mean(-1, keepdim=True)) * rstd


def critic_value_and_action_grad(pack: WeightPack, obs_proj: torch.Tensor, x: torch.Tensor, q_agg: str,
                                 need_grad: bool = True, portable: bool = False
                                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Aggregated Q ``[M]`` at ``x [M, d]`` and d sum(Q_agg)/dx ``[M, d]``, without autograd.

    ``obs_proj [E, M, H0]`` is the observation's share of the first layer plus its bias; ``portable`` uses only
    ops an exported function can hold.
    """
    q, cache = _critic_forward(pack, obs_proj, x)
    if q_agg == "mean":
        q_out, idx = q.mean(0), None
    elif q_agg == "min":
        q_out, idx = q.min(0)
    else:
        raise ValueError(f"unknown ensemble aggregation {q_agg!r}; expected 'min' or 'mean'")
    if not need_grad:
        return q_out, None
    return q_out, _critic_action_grad(pack, q, idx, cache, portable)


def _critic_forward(pack: WeightPack, obs_proj: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """Every member's Q ``[E, M]``, and per hidden layer what its backward needs: ``(pre-norm, (mean, rstd),
    output)`` (None, None where the layer has no LayerNorm)."""
    members = pack.critic_act.shape[0]
    z = _mm(x.expand(members, -1, -1), pack.critic_act, obs_proj)
    cache = []
    hidden = len(pack.critic) - 1
    h = z
    for i, layer in enumerate(pack.critic):
        if i > 0:
            z = _dense(h, layer, bias=True)
        if i == hidden:
            break
        pre_norm = stats = None
        if layer.ln_weight is not None:
            pre_norm = z
            normed, mean, rstd = _normalise(z)
            stats = (mean, rstd)
            z = torch.addcmul(layer.ln_bias, normed, layer.ln_weight)
        h = F.relu(z)
        cache.append((pre_norm, stats, h))
    return z.squeeze(-1), cache


def _critic_action_grad(pack: WeightPack, q: torch.Tensor, idx: torch.Tensor | None, cache: list,
                        portable: bool) -> torch.Tensor:
    """d sum(Q_agg)/dx ``[M, d]``: the backward ops autograd would run, called directly; ``idx`` is the minimum's
    member per row (None: the mean over members)."""
    members = pack.critic_act.shape[0]
    head = pack.critic_head_t  # dQ_e/dh_last [E, 1, H]
    if idx is None:
        grad = (head / members).expand(-1, q.shape[1], -1)
    else:
        grad = F.one_hot(idx, members).T.unsqueeze(-1).to(head.dtype) * head
    for i in range(len(cache) - 1, -1, -1):
        pre_norm, stats, out = cache[i]
        grad = torch.ops.aten.threshold_backward(grad, out, 0)
        layer = pack.critic[i]
        if pre_norm is not None and portable:
            grad = layer_norm_input_grad(grad * layer.ln_weight, pre_norm, *stats)
        elif pre_norm is not None:
            grad = torch.ops.aten.native_layer_norm_backward(grad * layer.ln_weight, pre_norm, pre_norm.shape[-1:],
                                                             *stats, None, None, [True, False, False])[0]
        grad = _mm(grad, pack.critic_act_t) if i == 0 else _dense(grad, layer, transposed=True)
    return grad.sum(0)


def kernel_and_repulsion_closed_form(x: torch.Tensor, bandwidth_grad: bool = True, repulsion: bool = True
                                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``kernel_and_repulsion`` of ``vgf_ray.core.transport`` without autograd: ``[B, N, d] -> (K, R)``; R is None
    without ``repulsion`` (the kernel alone).

    R_r = sum_c C_rc (x_r - x_c) with C = 2 gamma K (the kernel's slope at a fixed bandwidth) minus, with
    ``bandwidth_grad``, 2 dS/dmed W: W holds the median's interpolation weights on the two middle sorted squared
    distances (row r of entry (r, c) only: the eager path stops the gradient through the second argument)."""
    n = x.shape[-2]
    diff = x.unsqueeze(-2) - x.unsqueeze(-3)  # [B, N, N, d]: x_r - x_c
    d2 = diff.square().sum(-1)
    med, order = stable_median(d2.flatten(-2))  # the eager path's median, its ties resolved the same way
    lo, hi, frac = median_positions(n * n)
    scale = 1.0 / (2.0 * math.log(n + 1))
    h = med * scale
    gamma = h.clamp_min(1e-12).mul_(2.0).add_(1e-6).reciprocal_()[..., None, None]  # [B, 1, 1]
    k = (d2 * gamma).neg_().exp_()
    if not repulsion:
        return k, None
    coefficient = k * gamma
    if bandwidth_grad:
        # S = sum_rc k_rc; dS/dmed = dS/dgamma * dgamma/dh * dh/dmed = -sum(k d2) * (-2 gamma^2) * scale.
        d_med = (k * d2).sum((-2, -1), keepdim=True) * gamma.square() * (2.0 * scale) * (h >= 1e-12)[..., None, None]
        weights = torch.zeros_like(d2).flatten(-2)
        if lo == hi:
            weights.scatter_(-1, order[..., lo:lo + 1], value=1.0)
        else:
            weights.scatter_(-1, order[..., lo:lo + 1], value=1.0 - frac)
            weights.scatter_(-1, order[..., hi:hi + 1], value=frac)
        coefficient = coefficient - d_med * weights.view_as(d2)
    return k, (coefficient.unsqueeze(-1) * diff).sum(-2).mul_(2.0)


@dataclass(frozen=True)
class FusedSettings:
    alpha: float
    q_agg: str
    select_q_agg: str
    repulsion: bool
    bandwidth_grad: bool
    step_rule: str
    low: float
    high: float
    portable: bool = False  # only ops TorchScript and ONNX take (an exported acting function)


def fused_settings(nets, portable: bool = False) -> FusedSettings:
    """The fused path's constants for ``nets``' transport now, particles chosen by the training aggregation."""
    s = nets.transport_settings
    return FusedSettings(alpha=s.alpha, q_agg=s.q_agg, select_q_agg=nets.hp.train_q_agg, repulsion=s.repulsion,
                         bandwidth_grad=s.bandwidth_grad, step_rule=s.step_rule, low=s.clip_low, high=s.clip_high,
                         portable=portable)


def fused_act(pack: WeightPack, obs: torch.Tensor, noise: torch.Tensor, steps: int, step_size: float,
              flow_steps: int, settings: FusedSettings, with_q: bool = True, row_steps: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(particles [B, N, d], aggregated Q [B, N])`` for ``obs [B, o]`` from behavior ``noise [B, N, d]``; the Q is
    ``None`` without ``with_q`` (the TD target scores the particles with the target critic instead).
    ``row_steps [B]``: each row's own number of steps (``steps`` their maximum)."""
    b, n, d = noise.shape
    x = behavior_sample(pack, obs, noise, flow_steps, settings.low, settings.high)
    members = pack.critic_obs.shape[0]
    obs_proj = _mm(obs.expand(members, -1, -1), pack.critic_obs)  # [E, B, H0]
    obs_proj = (obs_proj.unsqueeze(2) + pack.critic[0].bias.unsqueeze(1)).expand(-1, -1, n, -1).reshape(
        members, b * n, -1)
    m = v = None
    for t in range(1, steps + 1):
        _, score = critic_value_and_action_grad(pack, obs_proj, x.reshape(b * n, d), settings.q_agg,
                                                   portable=settings.portable)
        score = score.reshape(b, n, d)
        if settings.repulsion:  # phi = (K G / alpha + R) / N as one batched matmul
            k, rep = kernel_and_repulsion_closed_form(x, settings.bandwidth_grad)
            phi = torch.baddbmm(rep, k, score, beta=1.0 / n, alpha=1.0 / (settings.alpha * n))
        else:  # the kernel-smoothed score alone: the repulsion is not computed at all
            k = kernel_and_repulsion_closed_form(x, False, repulsion=False)[0]
            phi = torch.bmm(k, score).mul_(1.0 / (settings.alpha * n))
        if settings.step_rule == "adam":  # Adam on the loss -phi, so m holds minus its first moment
            m = phi * (1 - ADAM_BETA1) if m is None else torch.lerp(m, phi, 1 - ADAM_BETA1)
            v = phi * phi * (1 - ADAM_BETA2) if v is None else torch.addcmul(v * ADAM_BETA2, phi, phi,
                                                                                value=1 - ADAM_BETA2)
            denominator = (v / (1 - ADAM_BETA2**t)).sqrt_().add_(ADAM_EPS)
            moved = torch.addcdiv(x, m, denominator, value=step_size / (1 - ADAM_BETA1**t))
        else:
            moved = torch.add(x, phi, alpha=step_size)
        x = freeze_finished_rows(moved.clamp_(settings.low, settings.high), x, row_steps, t)
    if not with_q:
        return x, None
    q, _ = critic_value_and_action_grad(pack, obs_proj, x.reshape(b * n, d), settings.select_q_agg,
                                        need_grad=False)
    return x, q.reshape(b, n)


def fused_act_max(pack: WeightPack, obs: torch.Tensor, noise: torch.Tensor, steps: int, step_size: float,
                  flow_steps: int, settings: FusedSettings, row_steps: torch.Tensor | None = None) -> torch.Tensor:
    """The executed actions ``[B, d]``: ``fused_act``'s particle with the highest aggregated Q per state (the
    ``max`` selection of ``select_particle``), chosen inside the same function so a compiled graph includes it."""
    x, q = fused_act(pack, obs, noise, steps, step_size, flow_steps, settings, row_steps=row_steps)
    return best_particle(x, q)[0]


def best_particle(x: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(particle [B, d], its Q [B])`` with the highest Q per state, from ``x [B, N, d]`` and ``q [B, N]``."""
    idx = q.argmax(-1)
    return (torch.gather(x, 1, idx[:, None, None].expand(-1, 1, x.shape[-1])).squeeze(1),
            torch.gather(q, 1, idx[:, None]).squeeze(1))


# Compiled graphs of fused_act per process: one per (budget steps, step size, dtype, config); dynamo's default of
# 8 runs out in a process that acts at several budgets (evaluation 0..3 plus exploration) or configurations, and
# then silently runs the function eagerly.
RECOMPILE_LIMIT = 64


def raise_recompile_limit() -> None:
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):  # the name changed across torch releases
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))


# Bumped whenever any module registers or replaces a parameter (``setattr``, ``load_state_dict(assign=True)``):
# a FusedActor then re-reads the networks' parameter list instead of walking the module tree on every call. The
# global hook that counts them is installed by the first FusedActor, not on import.
_parameter_registrations = 0
_registration_hook = None


def _count_parameter_registration(module, name, param) -> None:
    global _parameter_registrations
    _parameter_registrations += 1


def _watch_parameter_registrations() -> None:
    global _registration_hook
    if _registration_hook is None:
        _registration_hook = torch.nn.modules.module.register_module_parameter_registration_hook(
            _count_parameter_registration)

# Inductor options of the compiled acting graph (one observation per call): the C++ wrapper calls the graph's
# kernels from C++, not Python, a fixed cost that matters at acting's size and not at the TD target's batch.
ACTING_COMPILE_OPTIONS = {"cpp_wrapper": True}


class FusedActor:
    """Acts like ``VGFNetworks.act_eager`` through ``fused_act``, repacking weights only when they change.

    Holds no reference to the networks (they hold it), so copying or pickling them stays plain.
    """

    def __init__(self, compile: bool = False, compile_options: dict | None = None):
        _watch_parameter_registrations()
        self.requested_compile = compile
        self.compile_options = compile_options or {}
        self.pack: WeightPack | None = None
        self._functions: dict = {}  # fused_act / fused_act_max -> what runs it (itself, or its compiled graph)
        self._params: list[torch.Tensor] = []
        self._params_key: tuple | None = None
        self._settings_key: tuple | None = None
        self._settings: FusedSettings | None = None

    def is_compiled(self, function=fused_act) -> bool:
        """Whether ``function`` runs as a compiled graph here (False before its first call or after a fallback)."""
        return self._functions.get(function, function) is not function

    def _run(self, function, *args):
        """``function(*args)``, compiled when asked for; a compiler failure falls back to the function itself."""
        runner = self._functions.get(function)
        if runner is None:
            runner = self._functions[function] = function
            if self.requested_compile:
                try:
                    raise_recompile_limit()
                    runner = self._functions[function] = torch.compile(function, dynamic=False,
                                                                       options=self.compile_options)
                except Exception as err:  # no compiler backend here: the eager fused path is the fallback
                    warnings.warn(f"{COMPILE_FALLBACK}: torch.compile unavailable ({err})", stacklevel=4)
        try:
            return runner(*args)
        except Exception as err:
            if runner is function:
                raise
            warnings.warn(f"{COMPILE_FALLBACK}: torch.compile failed ({err})", stacklevel=4)
            self._functions[function] = function
            return function(*args)

    def _weight_version(self, nets) -> tuple:
        """(storage, in-place version) of every parameter: an optimizer step or a weight sync changes it."""
        key = (id(nets), _parameter_registrations)
        if key != self._params_key:
            self._params, self._params_key = list(nets.parameters()), key
        return tuple((p.data_ptr(), p._version) for p in self._params)

    def _current_settings(self, nets) -> FusedSettings:
        s, select_q_agg = nets.transport_settings, nets.hp.train_q_agg
        if self._settings_key is None or self._settings_key[0] is not s or self._settings_key[1] != select_q_agg:
            self._settings_key = (s, select_q_agg)
            self._settings = fused_settings(nets)
        return self._settings

    def particles(self, nets, obs: torch.Tensor, budget: TransportBudget, generator: torch.Generator | None = None,
                  with_q: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(particles [B, N, d], aggregated online Q [B, N] or None)``: ``VGFNetworks.sample_particles`` through
        the fused function; the noise is drawn as the behavior model draws it, so both paths see the same one.
        Weights in bf16 with ``hp.bf16`` (the learner's dtype: this is the TD target's transport)."""
        with torch.no_grad():
            return self._particles(nets, obs, budget, generator, with_q, nets.hp.bf16_on(obs.device))

    def _particles(self, nets, obs, budget, generator, with_q, bf16):
        return self._run(fused_act, *self._arguments(nets, obs, budget, generator, bf16), with_q,
                         budget.row_tensor(obs.shape[0], obs.device))

    def _arguments(self, nets, obs, budget, generator, bf16) -> tuple:
        """``fused_act``'s arguments but ``with_q``: the weights packed for this version, the behavior noise."""
        hp = nets.hp
        dtype = torch.bfloat16 if bf16 else torch.float32
        version = self._weight_version(nets)
        if self.pack is None or self.pack.version != version or self.pack.critic_act.dtype != dtype:
            self.pack = pack_weights(nets, dtype, version, onednn=not self.requested_compile)
        obs = obs.float()
        noise = torch.randn((*obs.shape[:-1], hp.num_particles, nets.act_dim), generator=generator,
                            device=obs.device, dtype=obs.dtype)
        return self.pack, obs, noise, budget.steps, budget.step_size, hp.bc_flow_steps, self._current_settings(nets)

    def act(self, nets, obs: torch.Tensor, budget: TransportBudget, selection: str | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
        selection = selection or nets.hp.eval_particle_select
        with torch.no_grad():
            if selection == "max":  # the usual rule: chosen inside the (compiled) function
                bf16 = nets.hp.acts_in_bf16(obs.device)
                return self._run(fused_act_max, *self._arguments(nets, obs, budget, generator, bf16),
                                 budget.row_tensor(obs.shape[0], obs.device))
            x, q = self._particles(nets, obs, budget, generator, True, nets.hp.acts_in_bf16(obs.device))
            idx = select_particle(q, selection, nets.hp.softmax_temp, generator)
            return x[torch.arange(x.shape[0], device=x.device), idx]
