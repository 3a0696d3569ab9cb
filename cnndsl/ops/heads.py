"""Heads that mark a tensor's meaning (identity on the values): ``boxes`` and ``detect``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import (
    Node,
    Shape,
    ShapeError,
    feature_map,
    is_view,
    no_macs,
    number_text,
    shape_str,
    stateless,
)
from cnndsl.ops.words import (
    REQUIRED,
    Built,
    Context,
    Layer,
    Param,
    choice,
    positive_int,
    simple,
)
from cnndsl.ops.words import anchors as anchor_list
from cnndsl.symbolic import Dim, dim_str, floordiv, simplify


@dataclass(kw_only=True)
class BoxHead(Node):
    """A box-regression head: marks a N x 4k tensor as k boxes in a named format (identity)."""

    kind: Literal["box_head"] = "box_head"
    format: Literal["xyxy", "xywh", "cxcywh"] = "cxcywh"
    boxes: int = 1

    words = (
        Layer("boxes", "box-regression head: N x 4k features as k boxes", simple("box_head"),
              ("format",), {"format": Param(choice("xyxy", "xywh", "cxcywh"), "cxcywh"),
                            "boxes": Param(positive_int, 1)},
              {"xyxy": ("format", "xyxy"), "xywh": ("format", "xywh"),
               "cxcywh": ("format", "cxcywh")}),
    )
    example = "input v: 6\nlinear 8 -> boxes xyxy boxes=2"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Reads N x 4k features: four numbers per box."""
        shape = inputs[0]
        wanted = 4 * self.boxes
        if len(shape) != 1 or shape[0] != wanted:
            raise ShapeError(
                Code.HEAD_MISMATCH,
                f"a box head for {self.boxes} box{'es' if self.boxes > 1 else ''} "
                f"({self.format}) needs N x {wanted} features, but receives {shape_str(shape)}",
                "end the head with 'linear 4' (4 numbers per box)",
            )
        return shape

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``boxes xyxy boxes=1``."""
        return f"boxes {self.format} boxes={self.boxes}"

    autograd = is_view


def build_detect(args: dict[str, Any], context: Context) -> Built:
    """``detect anchors=((10, 14), ...) classes=C stride=S``."""
    return [(None, {"kind": "detect_head", "anchors": args["anchors"],
                    "classes": args["classes"], "stride": args["stride"],
                    "image_size": context.image_size})]


@dataclass(kw_only=True)
class DetectHead(Node):
    """A YOLO-style detection head on a grid (identity on the raw map).

    Its input has ``len(anchors) * (5 + classes)`` channels laid out per anchor as
    ``[tx, ty, tw, th, objectness, class logits...]``; anchors are (width, height) in input
    pixels and ``stride`` is input size / grid size.
    """

    kind: Literal["detect_head"] = "detect_head"
    anchors: list[tuple[float, float]]
    classes: int
    stride: int
    image_size: tuple[Dim, Dim] | None = None

    words = (
        Layer("detect", "YOLO-style detection head on a grid", build_detect, (),
              {"anchors": Param(anchor_list, REQUIRED), "classes": Param(positive_int, REQUIRED),
               "stride": Param(positive_int, REQUIRED)}),
    )
    example = ("input x: 3 x 16 x 16\nconv 14 3x3 /4 pad 1\n"
               "detect anchors=((10, 14), (23, 27)) classes=2 stride=4")

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """anchors x (5 + classes) channels and a grid of input size / stride."""
        c, h, w = feature_map(inputs[0], "a detection head")
        count = len(self.anchors)
        wanted = count * (5 + self.classes)
        if c != wanted:
            raise ShapeError(
                Code.HEAD_MISMATCH,
                f"a detection head with {count} anchors and {self.classes} classes needs "
                f"{count} x (5 + {self.classes}) = {wanted} channels, but receives {c}",
                f"make the last convolution 'conv {wanted} 1x1'",
            )
        if self.image_size is not None:
            for size, grid, axis in zip(self.image_size, (h, w), ("height", "width"),
                                        strict=True):
                expected = floordiv(size, self.stride)
                if isinstance(size, int) and (size % self.stride or grid != expected):
                    raise ShapeError(
                        Code.STRIDE_MISMATCH,
                        f"stride {self.stride} does not match the grid: input {axis} {size} / "
                        f"{self.stride} = {size / self.stride:g}, but the grid is "
                        f"{dim_str(grid)}",
                        f"the map's real stride is {size / grid:g}"
                        if isinstance(grid, int) else "",
                    )
                if not isinstance(size, int) and simplify(expected) != grid:
                    raise ShapeError(
                        Code.STRIDE_MISMATCH,
                        f"stride {self.stride} does not match the grid {dim_str(grid)} for an "
                        f"input {axis} of {dim_str(size)}",
                    )
        return inputs[0]

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``detect anchors=((10, 14)) classes=80 stride=32``."""
        listed = ", ".join(f"({number_text(w)}, {number_text(h)})" for w, h in self.anchors)
        return f"detect anchors=({listed}) classes={self.classes} stride={self.stride}"

    autograd = is_view
