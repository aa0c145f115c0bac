"""Serving and exporting a trained agent: a Ray Serve endpoint with the budget per request, a portable function.

``deployment(checkpoint)`` is the Serve application (``vgf-ray serve`` runs it); ``vgf_ray.serving.export`` writes
the acting function at one budget as TorchScript or ONNX (``vgf-ray export``).
"""

from __future__ import annotations


def deployment(checkpoint: str, **options):
    """The policy of ``checkpoint`` as a Ray Serve application; ``options``: ``vgf_ray.serving.app.deployment``'s."""
    from vgf_ray.serving.app import deployment as build

    return build(checkpoint, **options)


__all__ = ["deployment"]
