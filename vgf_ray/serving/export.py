"""``vgf-ray export``: VGF's acting function at one budget as a standalone TorchScript or ONNX file.

The file holds the behavior flow, the critic and the transport unrolled at that budget, with the weights; it takes
``observation [B, obs_dim]`` and ``noise [B, N, act_dim]`` (standard normal: the behavior model's noise, an input so
the function is deterministic) and returns ``action [B, act_dim]`` in the env's box and ``q [B]``. Loading it needs
torch alone (TorchScript) or onnxruntime (ONNX), neither vgf_ray nor Ray. The settings go in as metadata
(``vgf_ray.json`` in TorchScript's extra files, ``metadata_props`` in ONNX).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from vgf_ray.errors import InputError
from vgf_ray.serving.acting import ActingFunction
from vgf_ray.serving.policy import MAX_STEP_SIZE, ServedPolicy

FORMATS = ("torchscript", "onnx")
METADATA_FILE = "vgf_ray.json"  # TorchScript extra file / ONNX metadata key holding the export's settings
INPUT_NAMES, OUTPUT_NAMES = ["observation", "noise"], ["action", "q"]


def export_acting_function(checkpoint: str | Path, budget: int, fmt: str, out: str | Path,
                           step_size: float | None = None) -> dict[str, Any]:
    """Write the acting function of ``checkpoint`` at ``budget``; returns the metadata written with it."""
    if fmt not in FORMATS:
        raise InputError(f"export: --format must be one of {list(FORMATS)}, got {fmt!r}")
    policy = ServedPolicy(checkpoint, device="cpu")
    spec = policy.spec
    if not policy.is_vgf:
        raise InputError(f"export {checkpoint}: a {spec.algorithm} checkpoint; export writes VGF's acting function "
                         "(behavior flow, critic and transport)")
    if not 0 <= budget <= spec.max_budget:
        raise InputError(f"export: --budget must be in [0, {spec.max_budget}], got {budget}")
    size = spec.default_step_size if step_size is None else float(step_size)
    if not 0.0 <= size <= MAX_STEP_SIZE:
        raise InputError(f"export: --step-size must be in [0, {MAX_STEP_SIZE}], got {size}")
    nets = policy.module.nets
    function = ActingFunction(nets, budget, size, spec.action_low, spec.action_high).eval()
    metadata = spec.info() | {"budget": budget, "step_size": size, "num_particles": nets.hp.num_particles,
                              "inputs": {"observation": ["batch", spec.obs_dim],
                                         "noise": ["batch", nets.hp.num_particles, nets.act_dim]},
                              "outputs": {"action": ["batch", nets.act_dim], "q": ["batch"]}}
    examples = (torch.zeros(2, spec.obs_dim), torch.randn(2, nets.hp.num_particles, nets.act_dim))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    (_torchscript if fmt == "torchscript" else _onnx)(function, examples, out, metadata)
    return metadata


def _torchscript(function: ActingFunction, examples: tuple, out: Path, metadata: dict) -> None:
    with warnings.catch_warnings():  # the particle count and budget are constants of the file, as intended
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(function, examples, check_trace=False)
    torch.jit.save(traced, str(out), _extra_files={METADATA_FILE: json.dumps(metadata)})


def _onnx(function: ActingFunction, examples: tuple, out: Path, metadata: dict) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as err:
        raise InputError(f"export --format onnx needs onnx and onnxscript: pip install 'vgf_ray[export]' ({err})"
                         ) from None
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings(), _quiet_logger("torch.onnx"):  # its notes on torchvision ops it skips
        # torch's notes on the shared batch axis (obs and noise, as intended) and on torch.utils._pytree's
        # LeafSpec, which its exporter still uses
        warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        program = torch.onnx.export(function, examples, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                                    dynamo=True, verbose=False, dynamic_shapes={"obs": {0: batch}, "noise": {0: batch}},
                                    custom_translation_table={torch.ops.aten.sort.stable: _stable_sort})
    model = program.model_proto
    onnx.helper.set_model_props(model, {METADATA_FILE: json.dumps(metadata)})
    onnx.save(model, str(out))


@contextlib.contextmanager
def _quiet_logger(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _stable_sort(self, stable: bool = True, dim: int = -1, descending: bool = False):
    """``aten.sort(stable=True)`` over the last dim as ONNX TopK, which breaks ties by the lower index as a stable
    sort does (the transport's median sorts distances that tie in pairs)."""
    from onnxscript import opset18 as op

    if dim != -1 or descending:
        raise NotImplementedError(f"stable sort over dim {dim} (descending={descending}) in an exported function")
    k = op.Shape(self, start=-1)
    return op.TopK(self, k, axis=-1, largest=0, sorted=1)
