"""Batch-norm folding: a batch norm after a convolution, merged into its weight and bias."""

from __future__ import annotations

import numpy as np

from cnndsl import ir


def _output_channel_scale(conv: ir.Conv | ir.ConvTranspose, scale: np.ndarray,
                          weight: np.ndarray) -> np.ndarray:
    """``weight`` with each output channel's slice multiplied by ``scale``."""
    if isinstance(conv, ir.Conv):  # (out, in / groups, kh, kw)
        return weight * scale[:, None, None, None]
    # (in, out / groups, kh, kw): group g's inputs make outputs g * out/groups ...
    groups, (inputs, per_group, kh, kw) = conv.groups, weight.shape
    grouped = weight.reshape(groups, inputs // groups, per_group, kh, kw)
    return (grouped * scale.reshape(groups, 1, per_group, 1, 1)).reshape(weight.shape)



def fold_batchnorms(network: ir.Network, weights: dict[str, np.ndarray]) -> dict[str, str]:
    """Fold each batch norm after a (transposed) convolution read by nothing else into it.

    Rewrites ``weights`` in place (the convolution gains a bias) and returns batch norm ->
    convolution names.
    """
    consumers = network.consumers()
    outputs = set(network.outputs.values())
    nodes = network.by_name()
    folded: dict[str, str] = {}
    for node in network.nodes:
        if not isinstance(node, ir.BatchNorm) or len(node.inputs) != 1:
            continue
        conv = nodes.get(node.inputs[0])
        if not isinstance(conv, ir.Conv | ir.ConvTranspose):
            continue
        if consumers[conv.name] != [node.name] or conv.name in outputs:
            continue
        if len(node.shape or ()) != 3:
            continue
        bn = node.name
        std = np.sqrt(weights[f"{bn}.running_var"] + np.float32(node.eps))
        scale = weights[f"{bn}.weight"] / std
        bias = weights.get(f"{conv.name}.bias", np.zeros(conv.out_channels, np.float32))
        weights[f"{conv.name}.weight"] = _output_channel_scale(
            conv, scale, weights[f"{conv.name}.weight"]).astype(np.float32)
        weights[f"{conv.name}.bias"] = (
            (bias - weights[f"{bn}.running_mean"]) * scale + weights[f"{bn}.bias"]
        ).astype(np.float32)
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            del weights[f"{bn}.{suffix}"]
        folded[bn] = conv.name
    return folded



