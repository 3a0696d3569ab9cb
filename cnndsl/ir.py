"""The typed IR: a network is a list of nodes in topological order, one pydantic model per kind.

Each node names its output tensor (``name``, the spec path such as ``layer3.2.conv1``), lists the
tensors it reads (``inputs``), keeps its source ``span`` and, once shapes are inferred, its output
``shape`` without the batch dimension (``N`` is always symbolic). Composites of the language
(residual, concat, squeeze-and-excitation, block calls) are expanded into these primitive nodes;
``instances`` records which block definition produced which path, for backends that rebuild the
block structure (the readable PyTorch emitter does).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from cnndsl.diagnostics import Span
from cnndsl.symbolic import Dim, Poly, dim_str

# A size is an int or a symbolic polynomial; JSON carries symbolic ones as strings.
Size = Annotated[
    Dim,
    PlainSerializer(lambda d: d if isinstance(d, int) else dim_str(d), return_type=Any),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
]
Shape: TypeAlias = tuple[Size, ...]
Pair: TypeAlias = tuple[int, int]


class Node(BaseModel):
    """Fields every node has."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str
    inputs: list[str] = Field(default_factory=list)
    span: Span = Field(default_factory=Span)
    shape: Shape | None = None
    params: int = 0
    trainable: bool = True


class Input(Node):
    """A graph input: ``input image: 3 x 224 x 224``."""

    kind: Literal["input"] = "input"
    declared: Shape


class Conv(Node):
    """2-D convolution; ``padding`` is (top, left, bottom, right), asymmetric for ``same``."""

    kind: Literal["conv"] = "conv"
    in_channels: int
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True


class ConvTranspose(Node):
    """2-D transposed convolution (learned upsampling); ``padding`` as PyTorch's (h, w)."""

    kind: Literal["conv_transpose"] = "conv_transpose"
    in_channels: int
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True


class BatchNorm(Node):
    """Batch normalisation over channels (2-D maps or feature vectors)."""

    kind: Literal["batchnorm"] = "batchnorm"
    channels: int
    eps: float = 1e-5
    momentum: float = 0.1


ActivationName = Literal[
    "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu"
]


class Activation(Node):
    """An element-wise activation function."""

    kind: Literal["activation"] = "activation"
    function: ActivationName
    negative_slope: float = 0.01


class Softmax(Node):
    """Softmax over the channel (or feature) axis."""

    kind: Literal["softmax"] = "softmax"
    axis: int = 1


class Pool(Node):
    """Max or average pooling; ``padding`` is symmetric (h, w) as in PyTorch."""

    kind: Literal["pool"] = "pool"
    mode: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


class GlobalPool(Node):
    """Global average or max pooling to N x C x 1 x 1."""

    kind: Literal["global_pool"] = "global_pool"
    mode: Literal["max", "avg"]


class AdaptivePool(Node):
    """Adaptive pooling to a fixed output size, as PyTorch's AdaptiveAvgPool2d."""

    kind: Literal["adaptive_pool"] = "adaptive_pool"
    mode: Literal["max", "avg"]
    output_size: Pair


class ChannelPool(Node):
    """Max pooling across channels (depthwise max pooling): C -> C / kernel."""

    kind: Literal["channel_pool"] = "channel_pool"
    kernel: int


class LRN(Node):
    """Local response normalisation across channels (AlexNet)."""

    kind: Literal["lrn"] = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


class Dropout(Node):
    """Dropout; the identity at inference."""

    kind: Literal["dropout"] = "dropout"
    p: float = 0.5


class Flatten(Node):
    """Flatten C x H x W into features."""

    kind: Literal["flatten"] = "flatten"


class Linear(Node):
    """A fully connected layer."""

    kind: Literal["linear"] = "linear"
    in_features: int
    out_features: int
    bias: bool = True


class Upsample(Node):
    """Upsampling by an integer factor, nearest or bilinear (align_corners=False)."""

    kind: Literal["upsample"] = "upsample"
    scale: Pair
    mode: Literal["nearest", "bilinear"] = "nearest"


class Identity(Node):
    """The identity."""

    kind: Literal["identity"] = "identity"


class Add(Node):
    """Element-wise sum of two or more tensors of one shape."""

    kind: Literal["add"] = "add"


class Mul(Node):
    """Element-wise product; a N x C x 1 x 1 operand is broadcast (channel scaling)."""

    kind: Literal["mul"] = "mul"


class Concat(Node):
    """Concatenation along channels."""

    kind: Literal["concat"] = "concat"
    axis: int = 1


class BoxHead(Node):
    """A box-regression head: marks a N x 4k tensor as k boxes in a named format (identity)."""

    kind: Literal["box_head"] = "box_head"
    format: Literal["xyxy", "xywh", "cxcywh"] = "cxcywh"
    boxes: int = 1


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
    image_size: tuple[Size, Size] | None = None


AnyNode = Annotated[
    Input | Conv | ConvTranspose | BatchNorm | Activation | Softmax | Pool | GlobalPool
    | AdaptivePool | ChannelPool | LRN | Dropout | Flatten | Linear | Upsample | Identity | Add
    | Mul | Concat | BoxHead | DetectHead,
    Field(discriminator="kind"),
]

NODE_KINDS: tuple[type[Node], ...] = (
    Input, Conv, ConvTranspose, BatchNorm, Activation, Softmax, Pool, GlobalPool, AdaptivePool,
    ChannelPool, LRN, Dropout, Flatten, Linear, Upsample, Identity, Add, Mul, Concat, BoxHead,
    DetectHead,
)


class BlockInstance(BaseModel):
    """A call of a block definition: where its nodes live and with which arguments."""

    path: str
    block: str
    arguments: dict[str, Any]
    input: str
    output: str
    span: Span = Field(default_factory=Span)


class ExpectResult(BaseModel):
    """The outcome of one ``expect`` line."""

    text: str
    actual: str
    ok: bool
    span: Span


class Network(BaseModel):
    """A checked network: nodes in topological order, its inputs and named outputs."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    file: str = "<string>"
    nodes: list[AnyNode] = Field(default_factory=list)
    inputs: list[str] = Field(default_factory=list)
    outputs: dict[str, str] = Field(default_factory=dict)
    tensors: dict[str, str] = Field(default_factory=dict)
    instances: list[BlockInstance] = Field(default_factory=list)
    symbols: list[str] = Field(default_factory=list)
    expects: list[ExpectResult] = Field(default_factory=list)

    def node(self, name: str) -> AnyNode:
        """The node that produces tensor ``name`` (a path or a label)."""
        target = self.tensors.get(name, name)
        for node in self.nodes:
            if node.name == target:
                return node
        raise KeyError(name)

    @property
    def total_params(self) -> int:
        """All parameters (weights and biases; batch-norm running statistics are buffers)."""
        return sum(node.params for node in self.nodes)

    @property
    def trainable_params(self) -> int:
        """Parameters that an optimizer updates."""
        return sum(node.params for node in self.nodes if node.trainable)

    def output_shapes(self) -> dict[str, Shape | None]:
        """Each named output's shape."""
        return {name: self.node(target).shape for name, target in self.outputs.items()}

    def by_name(self) -> dict[str, AnyNode]:
        """Nodes keyed by path."""
        return {node.name: node for node in self.nodes}

    def consumers(self) -> dict[str, list[str]]:
        """For each tensor, the nodes that read it."""
        readers: dict[str, list[str]] = {node.name: [] for node in self.nodes}
        for node in self.nodes:
            for source in node.inputs:
                readers.setdefault(source, []).append(node.name)
        return readers


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the IR, as `cnndsl ir --schema` prints it."""
    return Network.model_json_schema()


def shape_str(shape: Shape | None) -> str:
    """``N x 64 x 56 x 56``."""
    if shape is None:
        return "?"
    return " x ".join(["N", *(dim_str(d) for d in shape)])


__all__ = ["AnyNode", "Network", "Node", "Poly", "Shape", "json_schema", "shape_str"]
