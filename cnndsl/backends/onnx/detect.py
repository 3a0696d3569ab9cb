"""Append YOLO decoding and non-maximum suppression to an exported detector: image in, boxes out.

:func:`add_detection` takes the model that :func:`cnndsl.backends.onnx.build_onnx` (or
``to_onnx``, as a ``ModelProto``) built for a network with ``detect`` heads and appends, for
every head, the decoding of :func:`cnndsl.detection.decode_yolo` (same channel layout and slot
order), then the selection of :func:`cnndsl.detection.postprocess`:

* per slot, ``score = sigmoid(obj) * sigmoid(class logit)``, and only the slot's best class is
  a candidate (``postprocess(multi_label=False)``);
* ``NonMaxSuppression`` per class on xyxy boxes (``center_point_box=0``; IoU does not depend on
  the x/y order, so xyxy boxes serve for ONNX's yxyx), suppressing IoU > ``iou_threshold``;
* at most ``max_detections`` per image, by decreasing score.

The outputs are flat over the batch: ``boxes`` (K, 4) xyxy input pixels, ``scores`` (K,),
``classes`` (K,) int64 and ``batch_index`` (K,) int64, grouped by image and sorted by
decreasing score within each. With ``keep_raw`` the heads' raw maps stay outputs too.

A score exactly on ``score_threshold`` is kept, as in the numpy post-processing (ONNX's
``NonMaxSuppression`` keeps only scores above its threshold, so it gets the float32 just below
the smallest float32 that passes). Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx import wire
from cnndsl.detection.boxes import yolo_grid

if TYPE_CHECKING:
    import onnx

PREFIX = "postprocess"
MIN_OPSET = 11  # NonMaxSuppression with score_threshold, CumSum
REDUCE_AXES_INPUT_OPSET = 13


class _Builder:
    """Collects the appended nodes; every name gets the ``postprocess/`` prefix."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[wire.Node] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{PREFIX}/{hint}_{self.count}"

    def op(self, op_type: str, inputs: list[str], hint: str, outputs: int = 1,
           **attributes: Any) -> Any:
        name = self.name(hint)
        names = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(wire.Node(op_type, inputs, names, name, attributes))
        return names[0] if outputs == 1 else names

    def const(self, values: Any, hint: str, dtype: Any = np.int64) -> str:
        name = self.name(hint)
        tensor = wire.Tensor(name, np.asarray(values, dtype=dtype))
        self.nodes.append(wire.Node("Constant", [], [name], name, {"value": tensor}))
        return name

    def slice_last(self, x: str, start: int, end: int, hint: str) -> str:
        return self.op("Slice", [x, self.const([start], "start"), self.const([end], "end"),
                                 self.const([-1], "axis")], hint)

    def reduce_sum(self, x: str, axis: int, hint: str) -> str:
        if self.opset >= REDUCE_AXES_INPUT_OPSET:
            return self.op("ReduceSum", [x, self.const([axis], "axes")], hint, keepdims=0)
        return self.op("ReduceSum", [x], hint, axes=[axis], keepdims=0)


def _strictly_above(threshold: float) -> np.float32:
    """The float32 t with ``score > t`` exactly when ``score >= threshold`` for float32 scores."""
    lowest = np.float32(threshold)  # the smallest float32 score that passes ...
    if float(lowest) < threshold:
        lowest = np.nextafter(lowest, np.float32(np.inf))
    return np.nextafter(lowest, np.float32(-np.inf))  # ... and the float32 just below it


def _decode_head(b: _Builder, raw: str, head: ir.DetectHead) -> tuple[str, str]:
    """Boxes (N, S, 4) xyxy and per-class scores (N, S, C) of one head, in decode_yolo's order."""
    assert head.shape is not None
    _, height, width = head.shape
    if not (isinstance(height, int) and isinstance(width, int)):
        raise ValueError(f"{head.name}: the grid {ir.shape_str(head.shape)} must be concrete; "
                         "export at a fixed input size")
    anchors = np.asarray(head.anchors, dtype=np.float32)
    count, per_anchor = anchors.shape[0], 5 + head.classes
    slots = height * width * count
    grid = b.op("Reshape", [raw, b.const([-1, count, per_anchor, height, width], "shape")],
                "grid")
    # (N, A, 5+C, H, W) -> (N, H, W, A, 5+C) -> (N, H*W*A, 5+C): slot s = (i*W + j)*A + a.
    rows = b.op("Transpose", [grid], "slots", perm=[0, 3, 4, 1, 2])
    rows = b.op("Reshape", [rows, b.const([-1, slots, per_anchor], "shape")], "rows")
    cells, anchor_index = yolo_grid((height, width), count)
    offset = b.op("Sigmoid", [b.slice_last(rows, 0, 2, "txty")], "offset")
    centre = b.op("Add", [offset, b.const(cells, "cells", np.float32)], "cell_centre")
    centre = b.op("Mul", [centre, b.const(float(head.stride), "stride", np.float32)], "centre")
    size = b.op("Exp", [b.slice_last(rows, 2, 4, "twth")], "scale")
    size = b.op("Mul", [size, b.const(anchors[anchor_index], "anchors", np.float32)], "size")
    half = b.op("Mul", [size, b.const(0.5, "half", np.float32)], "half_size")
    top_left = b.op("Sub", [centre, half], "top_left")
    bottom_right = b.op("Add", [centre, half], "bottom_right")
    boxes = b.op("Concat", [top_left, bottom_right], "boxes", axis=-1)
    objectness = b.op("Sigmoid", [b.slice_last(rows, 4, 5, "obj")], "objectness")
    if head.classes:
        probs = b.op("Sigmoid", [b.slice_last(rows, 5, per_anchor, "cls")], "class_probs")
        scores = b.op("Mul", [objectness, probs], "scores")
    else:
        scores = objectness  # a one-class detector is scored by objectness alone
    return boxes, scores


def _best_class_only(b: _Builder, scores: str, classes: int) -> str:
    """Zero every score but the slot's first-best class, as postprocess(multi_label=False)."""
    best = b.op("ArgMax", [scores], "best", axis=-1, keepdims=1)
    is_best = b.op("Equal", [best, b.const(np.arange(classes), "class_ids")], "is_best")
    mask = b.op("Cast", [is_best], "best_mask", to=wire.FLOAT)
    return b.op("Mul", [scores, mask], "best_scores")


def _per_image_top(b: _Builder, batch: str, score: str, image: str, max_detections: int
                   ) -> str:
    """Indices into the K selections: grouped by image, score-descending, at most
    ``max_detections`` per image."""
    count = b.op("Shape", [score], "k")
    by_score = b.op("TopK", [score, count], "by_score", outputs=2, axis=0, largest=1,
                    sorted=1)[1]
    batch_sorted = b.op("Gather", [batch, by_score], "batch_by_score", axis=0)
    # A stable sort by image: the key image * K + position is unique and keeps the score order.
    position = b.op("Range", [b.const(0, "zero"), b.op("Squeeze", [count, b.const([0], "ax")],
                                                       "k_scalar"),
                              b.const(1, "one")], "position")
    key = b.op("Add", [b.op("Mul", [batch_sorted, count], "image_key"), position], "key")
    by_image = b.op("TopK", [key, count], "by_image", outputs=2, axis=0, largest=0,
                    sorted=1)[1]
    order = b.op("Gather", [by_score, by_image], "order", axis=0)
    ordered_batch = b.op("Gather", [batch, order], "ordered_batch", axis=0)
    # Rank inside its image = position - index of the image's first selection.
    images = b.op("Gather", [b.op("Shape", [image], "image_shape"), b.const([0], "n")],
                  "batch_size", axis=0)
    image_ids = b.op("Range", [b.const(0, "zero"),
                               b.op("Squeeze", [images, b.const([0], "ax")], "n_scalar"),
                               b.const(1, "one")], "image_ids")
    one_hot = b.op("Equal", [b.op("Unsqueeze", [ordered_batch, b.const([1], "ax")], "column"),
                             image_ids], "one_hot")
    per_image = b.reduce_sum(b.op("Cast", [one_hot], "one_hot_int", to=wire.INT64), 0,
                             "per_image")
    first = b.op("CumSum", [per_image, b.const(0, "axis")], "first", exclusive=1)
    rank = b.op("Sub", [position, b.op("Gather", [first, ordered_batch], "start", axis=0)],
                "rank")
    keep = b.op("Less", [rank, b.const(max_detections, "max_det")], "keep")
    return b.op("Compress", [order, keep], "kept", axis=0)


@overload
def add_detection(model: wire.Model, network: ir.Network, *, score_threshold: float = ...,
                  iou_threshold: float = ..., max_detections: int = ...,
                  keep_raw: bool = ...) -> wire.Model: ...


@overload
def add_detection(model: onnx.ModelProto, network: ir.Network, *,
                  score_threshold: float = ..., iou_threshold: float = ...,
                  max_detections: int = ..., keep_raw: bool = ...) -> onnx.ModelProto: ...


def add_detection(model: wire.Model | onnx.ModelProto, network: ir.Network, *,
                  score_threshold: float = 0.25, iou_threshold: float = 0.45,
                  max_detections: int = 100,
                  keep_raw: bool = False) -> wire.Model | onnx.ModelProto:
    """A copy of ``model`` (built from ``network``) that decodes every detect head and runs NMS.

    Takes and returns either cnndsl's :class:`~cnndsl.backends.onnx.wire.Model` or an
    ``onnx.ModelProto``. Outputs ``boxes`` (K, 4) xyxy pixels, ``scores`` (K,), ``classes`` (K,)
    int64 and ``batch_index`` (K,) int64; see the module docstring for the exact selection.
    """
    heads = [node for node in network.nodes if isinstance(node, ir.DetectHead)]
    if not heads:
        raise ValueError(f"network {network.name} has no detect head")
    classes = {head.classes for head in heads}
    if len(classes) != 1:
        raise ValueError(f"the detect heads disagree on the class count: {sorted(classes)}")
    num_classes = max(classes.pop(), 1)
    if max_detections < 1:
        raise ValueError("max_detections must be at least 1")
    if isinstance(model, wire.Model):
        opset = model.opset
        produced = {out for node in model.graph.nodes for out in node.outputs}
    else:
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        produced = {out for node in model.graph.node for out in node.output}
    if opset < MIN_OPSET:
        raise ValueError(f"detection post-processing needs opset {MIN_OPSET} or newer")
    b = _Builder(opset)
    decoded = []
    for head in heads:
        if head.name not in produced:
            raise ValueError(f"the model has no tensor {head.name}; was it built from "
                             f"network {network.name}?")
        decoded.append(_decode_head(b, head.name, head))
    boxes = b.op("Concat", [d[0] for d in decoded], "all_boxes", axis=1)
    scores = b.op("Concat", [d[1] for d in decoded], "all_scores", axis=1)
    scores = _best_class_only(b, scores, num_classes)
    per_class = b.op("Transpose", [scores], "class_scores", perm=[0, 2, 1])  # (N, C, S)
    selected = b.op("NonMaxSuppression", [
        boxes, per_class, b.const([max_detections], "max_per_class"),
        b.const([iou_threshold], "iou_threshold", np.float32),
        b.const([_strictly_above(score_threshold)], "score_threshold", np.float32),
    ], "nms", center_point_box=0)
    batch = b.op("Squeeze", [b.slice_last(selected, 0, 1, "batch"), b.const([1], "ax")],
                 "batch_ids")
    box_index = b.op("Concat", [b.slice_last(selected, 0, 1, "b"),
                                b.slice_last(selected, 2, 3, "s")], "box_index", axis=1)
    score = b.op("GatherND", [per_class, selected], "selected_scores")
    kept = _per_image_top(b, batch, score, network.inputs[0], max_detections)
    outputs = {
        "boxes": b.op("GatherND", [boxes, b.op("Gather", [box_index, kept], "bi", axis=0)],
                      "selected_boxes"),
        "scores": b.op("Gather", [score, kept], "kept_scores", axis=0),
        "classes": b.op("Gather", [b.op("Squeeze", [b.slice_last(selected, 1, 2, "c"),
                                                    b.const([1], "ax")], "class_ids"), kept],
                        "kept_classes", axis=0),
        "batch_index": b.op("Gather", [batch, kept], "kept_batch", axis=0),
    }
    nodes = [*b.nodes, *(wire.Node("Identity", [source], [name], name)
                         for name, source in outputs.items())]
    infos = [wire.ValueInfo("boxes", wire.FLOAT, ["K", 4]),
             wire.ValueInfo("scores", wire.FLOAT, ["K"]),
             wire.ValueInfo("classes", wire.INT64, ["K"]),
             wire.ValueInfo("batch_index", wire.INT64, ["K"])]
    properties = {"cnndsl.detect.score_threshold": repr(score_threshold),
                  "cnndsl.detect.iou_threshold": repr(iou_threshold),
                  "cnndsl.detect.max_detections": str(max_detections)}
    if isinstance(model, wire.Model):
        graph = replace(model.graph, nodes=[*model.graph.nodes, *nodes],
                        outputs=[*(model.graph.outputs if keep_raw else []), *infos])
        return replace(model, graph=graph, metadata={**model.metadata, **properties})
    return _extend_proto(model, nodes, infos, properties, keep_raw)


def _extend_proto(model: onnx.ModelProto, nodes: list[wire.Node], infos: list[wire.ValueInfo],
                  properties: dict[str, str], keep_raw: bool) -> onnx.ModelProto:
    import onnx

    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.node.extend(onnx.NodeProto.FromString(wire.node_bytes(n)) for n in nodes)
    if not keep_raw:
        del result.graph.output[:]
    result.graph.output.extend(onnx.ValueInfoProto.FromString(wire.value_info_bytes(info))
                               for info in infos)
    onnx.helper.set_model_props(result, {**{p.key: p.value for p in model.metadata_props},
                                         **properties})
    return result
