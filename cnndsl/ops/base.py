"""The shape of an op definition: the IR node fields and the facts each kind states once.

Every IR kind is one class, a plain dataclass that derives from :class:`Node`. Besides its IR
fields, the class states (in its own body, so that a missing fact is noticed, see
:func:`cnndsl.ops.registry.missing`):

- ``words``: the language words that build it (:class:`cnndsl.ops.words.Layer`);
- ``infer(inputs)``: the shape rule, raising :class:`ShapeError` with a code;
- ``state()``: its parameters and buffers (:class:`State`: key suffix, shape, initialisation);
  the one source of parameter counts, memory, ONNX initializers and both PyTorch inits;
- ``macs(network)``: multiply-accumulates for one sample (FlopCounterMode's convention);
- ``text()``: its statement in a printed spec;
- ``autograd()``: what its backward saves and whether its output may be overwritten in place;
- ``example``: a small spec body that the conformance suite checks against PyTorch and ONNX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from cnndsl.diagnostics import Code, Span
from cnndsl.symbolic import Dim, dim_str, floordiv, simplify

if TYPE_CHECKING:
    from cnndsl.ir import Network
    from cnndsl.ops.words import Layer

Shape = tuple[Dim, ...]
Pair = tuple[int, int]

# How a tensor of state starts out. ``kaiming_normal``: normal with fan_out and ReLU gain;
# ``kaiming_uniform``: PyTorch's default for weights (a = sqrt(5), so bound 1 / sqrt(fan));
# ``uniform``: bound 1 / sqrt(fan) (PyTorch's default for biases); ``ones``; ``zeros``.
INITS = ("kaiming_normal", "kaiming_uniform", "uniform", "ones", "zeros")


@dataclass(frozen=True)
class State:
    """One tensor of a node's state: ``weight`` (a parameter) or ``running_mean`` (a buffer).

    ``fan`` is the fan that the initialisation scales by; ``optional`` marks a tensor that some
    nodes of the kind lack (a bias), so generated code guards it; ``dtype`` is ``float32`` or
    ``int64`` (batch norm's step counter, which no exporter keeps).
    """

    name: str
    shape: tuple[int, ...]
    init: str
    buffer: bool = False
    fan: int = 1
    optional: bool = False
    dtype: str = "float32"

    @property
    def elements(self) -> int:
        """How many numbers the tensor holds."""
        count = 1
        for size in self.shape:
            count *= size
        return count


@dataclass(frozen=True)
class Autograd:
    """What the memory replay and in-place planning need to know about a kind's backward.

    ``saves``: the tensors its backward keeps ("input", "output", "inputs"; extra temporaries
    are the memory rule's business; "indices": int64 indices of the output's size);
    ``overwritable``: whether its backward does not read its output, so a following activation
    may overwrite that output in place; ``view``: the output shares its input's storage;
    ``grad_view``: the input gradients are the output gradient or views of it (no new storage);
    ``statistics``: floats per sample of the mean and the inverse std that the forward computes
    (in fp32, also at inference) and backward saves, as group or layer norm do (0: none).
    """

    saves: tuple[str, ...] = ()
    overwritable: bool = False
    view: bool = False
    grad_view: bool = False
    statistics: int = 0


class ShapeError(Exception):
    """A shape rule failed; carries the diagnostic code and message."""

    def __init__(self, code: Code, message: str, *notes: str):
        super().__init__(message)
        self.code = code
        self.message = message
        self.notes = notes


@dataclass(frozen=True, kw_only=True)
class ReceptiveField:
    """Which input pixels a tensor's outputs read (see cnndsl.analysis.receptive); (h, w) pairs.

    ``size`` is the largest window over the output positions, ``jump`` the input pixels between
    neighbouring outputs, ``offset`` the centre of output 0's window in input pixel indices.
    ``whole``: some path (global pooling, a dense layer) reads the whole input; then ``size`` is
    None and ``local_size`` is the window of the other paths, if any. ``branches``: at a merge
    whose inputs' fields differ, each input's size (None: whole).
    """

    input: str
    size: tuple[int, int] | None
    jump: tuple[int | float, int | float] | None = None
    offset: tuple[int | float, int | float] | None = None
    whole: bool = False
    local_size: tuple[int, int] | None = None
    branches: dict[str, tuple[int, int] | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class Node:
    """Fields every node has."""

    name: str
    inputs: list[str] = field(default_factory=list)
    span: Span = field(default_factory=Span)
    shape: Shape | None = None
    params: int = 0
    trainable: bool = True
    kind: str = ""
    receptive_field: ReceptiveField | None = None

    words: ClassVar[tuple[Layer, ...]] = ()
    tensor_word: ClassVar[str | None] = None  # a word that takes tensors: add(a, b)
    # Boolean fields that add an optional tensor of state when true (``bias``): code written
    # for every node of a kind (the emitted init loop) must cover them.
    optional_state: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[str] = ""

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """The output shape from the input shapes; raises ShapeError."""
        raise NotImplementedError(self.kind)

    def state(self) -> list[State]:
        """Parameters and buffers, in the PyTorch module's order."""
        raise NotImplementedError(self.kind)

    def macs(self, network: Network) -> int:
        """Multiply-accumulates for one sample."""
        raise NotImplementedError(self.kind)

    def text(self) -> str:
        """The statement's right-hand side in a printed spec."""
        raise NotImplementedError(self.kind)

    def autograd(self) -> Autograd:
        """The facts of its backward that the memory replay uses."""
        raise NotImplementedError(self.kind)


# Facts shared by many kinds, assigned in a class body (``state = stateless``) so that the
# class still states each fact itself.


def stateless(self: Node) -> list[State]:
    """No parameters and no buffers."""
    return []


def no_macs(self: Node, network: Network) -> int:
    """Not counted: FlopCounterMode has no formula for it (see analysis/flops.py)."""
    return 0


def keeps_shape(self: Node, inputs: Sequence[Shape]) -> Shape:
    """Element-wise: the output has the input's shape."""
    return inputs[0]


def saves_nothing(self: Node) -> Autograd:
    """Its backward needs only shapes."""
    return Autograd()


def saves_input(self: Node) -> Autograd:
    """Its backward reads its input."""
    return Autograd(("input",))


def is_view(self: Node) -> Autograd:
    """Its output is its input (a marker or a view): nothing saved, the gradient flows on."""
    return Autograd(view=True, grad_view=True)


# Helpers of the shape rules ------------------------------------------------------------------


def shape_str(shape: Shape | None) -> str:
    """``N x 64 x 56 x 56``."""
    if shape is None:
        return "?"
    return " x ".join(["N", *(dim_str(d) for d in shape)])


def concrete_shape(shape: Shape | None, where: str) -> tuple[int, ...]:
    """The shape as integers; ValueError when a size is still symbolic."""
    if shape is None:
        raise ValueError(f"'{where}' has no inferred shape")
    sizes = tuple(d for d in shape if isinstance(d, int))
    if len(sizes) != len(shape):
        raise ValueError(
            f"'{where}' has symbolic size {shape_str(shape)}; bind it with --input "
            "(e.g. 3x224x224 or H=224,W=224)"
        )
    return sizes


def feature_map(shape: Shape, what: str) -> tuple[Dim, Dim, Dim]:
    """C, H, W of an N x C x H x W input, or a rank error naming the layer."""
    if len(shape) != 3:
        raise ShapeError(
            Code.RANK_MISMATCH,
            f"{what} needs a feature map N x C x H x W, but its input is {shape_str(shape)}",
            "a flatten or linear layer came before it" if len(shape) == 1 else "",
        )
    c, h, w = shape
    return c, h, w


def check_channels(actual: Dim, expected: int, what: str) -> None:
    """A channel-count error unless ``actual`` is ``expected``."""
    if actual != expected:
        raise ShapeError(
            Code.CHANNEL_MISMATCH, f"{what} expects {expected} channels but receives {actual}"
        )


def window(size: Dim, kernel: int, stride: int, pad_before: int, pad_after: int,
           dilation: int, axis: str, what: str) -> Dim:
    """The output size of a sliding window along one axis."""
    padded = simplify(size + pad_before + pad_after)
    reach = dilation * (kernel - 1) + 1
    if isinstance(padded, int) and padded < reach:
        raise ShapeError(
            Code.KERNEL_TOO_LARGE,
            f"{what} kernel spans {reach} along {axis} but the padded input is only {padded}",
        )
    return simplify(floordiv(padded - reach, stride) + 1)


def positive(shape: Shape, what: str) -> Shape:
    """The shape, or an error when a size came out zero or less."""
    for dim in shape:
        if isinstance(dim, int) and dim <= 0:
            raise ShapeError(Code.EMPTY_OUTPUT,
                             f"{what} output {shape_str(shape)} has a size of {dim}")
    return shape


# Helpers of the printed text -----------------------------------------------------------------


def number_text(value: float) -> str:
    """A float as the shortest text that reads back to the same value."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def pair_text(pair: Sequence[int]) -> str:
    """``3x3``."""
    return f"{pair[0]}x{pair[1]}"


def tuple_text(values: Sequence[object]) -> str:
    """``(1, 2)``."""
    return "(" + ", ".join(str(v) for v in values) + ")"


def bias_text(bias: bool) -> str:
    """``bias=true``."""
    return f"bias={'true' if bias else 'false'}"
