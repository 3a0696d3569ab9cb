"""Peak memory of inference and of one training step, and the batch-size planner.

The estimate replays what PyTorch's eager runtime allocates, tensor by tensor, over the
network's topological order, and keeps the running total's maximum, the quantity that
``torch.distributed._tools.mem_tracker.MemTracker`` reports (the total of live tensor storages,
looked at after every operator). It counts tensor storages only: no allocator rounding or
fragmentation on the CPU (on ``device="cuda"`` each storage is rounded up to 512 bytes, as the
caching allocator and MemTracker do), no framework workspaces (cuDNN, oneDNN) and no code.

Inference (``kind="inference"``, ``model.eval()`` under ``torch.no_grad()``)
    weights + buffers + the input + the activations alive at once. A liveness pass walks the
    nodes in order: each output is allocated while its inputs are still alive (the operator
    reads them), and a tensor is freed after its last reader. Views (``flatten``) and markers
    (``identity``, ``box_head``, ``detect_head``, dropout at inference) share their input's
    storage, and so does an activation that the PyTorch backend runs in place
    (``in_place_nodes`` asks the backend's own table).

Training (``kind="training"``): one steady-state step -- forward, ``sum`` of the outputs as the
loss, backward, optimizer step -- after a first step has created the optimizer state and with
gradients set to None before the forward (``zero_grad(set_to_none=True)``, PyTorch's default).
    - always alive: weights, buffers, optimizer state (SGD none; momentum one buffer per
      parameter; Adam/AdamW two, plus a 4-byte step counter per parameter tensor), the input;
    - forward: each operator's output and the tensors it saves for backward (rules below); a
      tensor lives while the forward still reads it or any not-yet-run backward node saved it;
    - backward, nodes in reverse order: each node allocates the gradients of its inputs and
      parameters (and temporaries), then frees its gradient input and saved tensors; gradients
      of a tensor read twice are summed in place; parameter gradients stay;
    - optimizer step: gradients alive plus the update's temporaries (Adam on the CPU runs one
      tensor at a time and holds ``sqrt(v)`` and ``sqrt(v) / c`` at once: twice the largest
      parameter tensor; on CUDA the foreach kernels hold ``sqrt(v)`` for all parameters).
    The peak is the maximum over the three phases.

What each kind saves for backward (PyTorch's derivative formulas; shared storages count once):
    conv, conv_transpose: its input (and weight);  linear: its input (and weight);
    batchnorm: its input, batch mean and inverse std (C floats each);
    relu, sigmoid, tanh, softmax: their output;  leaky_relu, relu6, silu, gelu, hardswish,
    hardsigmoid: their input;
    max pool, adaptive/global max pool: input + int64 indices of the output's size;
    avg pool, adaptive avg pool: input; global avg pool: nothing (it is a mean);
    dropout: its noise tensor (input size and dtype on the CPU; on CUDA a 1-byte mask);
    mul: both operands (x and the gate of squeeze-and-excitation);
    channel max pool: input and output; LRN: input, the zero-padded square (C+size-1)/C x
    input, k + alpha*avg and its power (input size each);
    add, concat, upsample, flatten, identity and the heads: nothing.

Precision: ``fp32``/``fp16``/``bf16`` hold weights, buffers, activations, gradients and optimizer
state in that type (indices stay int64). ``mixed`` follows ``torch.autocast``: activations in
16 bits, weights, gradients and optimizer state in fp32, plus a 16-bit copy of each conv and
linear weight that autocast caches for the forward and the layer saves for backward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from cnndsl import ir
from cnndsl.analysis.flops import concrete_shape

DTYPES = ("fp32", "fp16", "bf16", "mixed")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
KINDS = ("inference", "training")
DEVICES = ("cpu", "cuda")
_CUDA_BLOCK = 512
_INDEX_BYTES = 8  # int64 indices of max pooling
_STAT_BYTES = 4  # batch norm's saved mean and inverse std are fp32


@dataclass(frozen=True)
class Precision:
    """Bytes per element of activations and of weights, and whether autocast copies weights."""

    activation: int
    weight: int
    half_weights: bool = False


def precision(dtype: str) -> Precision:
    """The element sizes for a dtype name (fp32, fp16, bf16 or mixed)."""
    if dtype == "fp32":
        return Precision(4, 4)
    if dtype in ("fp16", "bf16"):
        return Precision(2, 2)
    if dtype == "mixed":
        return Precision(2, 4, half_weights=True)
    raise ValueError(f"unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}")


# ---------------------------------------------------------------------------------------------
# parameters, buffers and optimizer state


def parameter_tensors(node: ir.Node) -> list[int]:
    """Element counts of a node's parameter tensors (weight, then bias), as PyTorch holds them."""
    return [s.elements for s in node.state() if not s.buffer]


def _weight_elements(node: ir.Node) -> int:
    """Elements of the weight that autocast copies to 16 bits (conv, deconv, linear)."""
    if isinstance(node, ir.Conv | ir.ConvTranspose | ir.Linear):
        return parameter_tensors(node)[0]
    return 0


def _buffer_bytes(node: ir.Node, prec: Precision) -> int:
    # floating-point buffers (running statistics) in the weights' type, int64 counters 8 bytes
    return sum(s.elements * (prec.weight if s.dtype == "float32" else 8)
               for s in node.state() if s.buffer)


def _optimizer_slots(optimizer: str) -> int:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{optimizer}'; use one of {', '.join(OPTIMIZERS)}")
    return {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]


# ---------------------------------------------------------------------------------------------
# the allocation replay


@dataclass
class _Replay:
    """Live storages with their holders; the running total and its maximum."""

    round_to: int = 1
    sizes: dict[int, int] = field(default_factory=dict)
    holders: dict[int, set[object]] = field(default_factory=dict)
    current: int = 0
    peak: int = 0
    _next: int = 0
    events: list[Event] | None = None  # filled by record() when a timeline is asked for
    _window: int = 0  # the largest total since the last record()

    def alloc(self, nbytes: int, holder: object) -> int:
        if self.round_to > 1 and nbytes:
            nbytes = -(-nbytes // self.round_to) * self.round_to
        sid = self._next
        self._next += 1
        self.sizes[sid] = nbytes
        self.holders[sid] = {holder}
        self.current += nbytes
        return sid

    def hold(self, sid: int, holder: object) -> None:
        self.holders[sid].add(holder)

    def drop(self, sid: int, holder: object) -> None:
        owners = self.holders.get(sid)
        if owners is None:
            return
        owners.discard(holder)
        if not owners:
            del self.holders[sid]
            self.current -= self.sizes.pop(sid)

    def shared(self, sid: int) -> bool:
        return len(self.holders.get(sid, ())) > 1

    def mark(self) -> None:
        self.peak = max(self.peak, self.current)
        self._window = max(self._window, self.current)

    def record(self, phase: str, name: str) -> None:
        """Close one step of the timeline: what is live now and the most it reached."""
        if self.events is not None:
            self.events.append(Event(phase, name, self.current,
                                     max(self._window, self.current)))
        self._window = self.current


@dataclass(frozen=True)
class Event:
    """One step of the replay: after ``phase`` ran ``node``, ``live`` bytes are allocated;
    ``peak`` is the most they reached during that step."""

    phase: str  # "setup", "forward", "backward" or "step"
    node: str
    live: int
    peak: int


@dataclass(frozen=True)
class Tensor:
    """A tensor in the replay: its storage and its size in bytes."""

    sid: int
    nbytes: int


@dataclass
class _Op:
    """What the rules of one node see: the replay, sizes and the mode."""

    replay: _Replay
    node: ir.Node
    inputs: list[Tensor]
    out_bytes: int
    batch: int
    prec: Precision
    training: bool
    device: str
    in_place: bool = False
    shape_of_input: tuple[int, ...] = ()
    saved: list[int] = field(default_factory=list)
    records: bool = True  # whether autograd records the node (something it reads needs grad)

    def new(self, nbytes: int) -> Tensor:
        """A storage held by this operator until it hands it on (``TMP``)."""
        return Tensor(self.replay.alloc(nbytes, TMP), nbytes)

    def free(self, tensor: Tensor) -> None:
        self.replay.drop(tensor.sid, TMP)

    def save(self, *tensors: Tensor) -> None:
        """Keep tensors alive until this node's backward has run."""
        if self.training and self.records:
            for tensor in tensors:
                self.replay.hold(tensor.sid, ("saved", self.node.name))
                self.saved.append(tensor.sid)


TMP = "tmp"
CACHE = "autocast-cache"  # autocast keeps weight copies until the autocast region ends

# A forward rule returns the output tensor; it allocates, marks and saves through the _Op.
Forward = Callable[[_Op], Tensor]
# Kinds whose allocations the autograd facts alone do not tell (autocast copies, batch norm's
# statistics, in-place activations, LRN's chain of temporaries ...) register a rule here;
# every other kind is replayed by the rule derived from ``Node.autograd`` (_generic_forward).
FORWARD: dict[str, Forward] = {}


def forward_rule(*kinds: str) -> Callable[[Forward], Forward]:
    """Register a kind's forward replay."""

    def register(rule: Forward) -> Forward:
        for kind in kinds:
            FORWARD[kind] = rule
        return rule

    return register


def _out(op: _Op) -> Tensor:
    out = op.new(op.out_bytes)
    op.replay.mark()
    return out


def _padded_bytes(op: _Op) -> int:
    """Bytes of the zero-padded copy that an asymmetric (``same``) padding makes first."""
    node = op.node
    source = op.inputs[0]
    if not isinstance(node, ir.Conv) or not _asymmetric(node):
        return 0
    channels, height, width = op.shape_of_input
    top, left, bottom, right = node.padding
    return source.nbytes // (channels * height * width) * channels * (
        (height + top + bottom) * (width + left + right))


def _asymmetric(node: ir.Conv) -> bool:
    top, left, bottom, right = node.padding
    return top != bottom or left != right


@forward_rule("conv", "conv_transpose", "linear")
def _conv_forward(op: _Op) -> Tensor:
    padded = None
    if isinstance(op.node, ir.Conv) and _asymmetric(op.node):
        padded = op.new(_padded_bytes(op))  # F.pad, then the convolution reads the copy
        op.replay.mark()
    if op.prec.half_weights:
        # autocast's cached 16-bit weight copy: made in the forward, saved for backward
        copy = op.new(_weight_elements(op.node) * op.prec.activation)
        op.replay.mark()
        op.replay.hold(copy.sid, CACHE)
        op.save(copy)
        op.free(copy)
    out = _out(op)
    if padded is not None:
        op.save(padded)
        op.free(padded)
    else:
        op.save(op.inputs[0])
    return out


@forward_rule("batchnorm")
def _batchnorm_forward(op: _Op) -> Tensor:
    out = _out(op)
    if op.training:
        channels = op.node.channels  # type: ignore[attr-defined]
        mean, invstd = op.new(channels * _STAT_BYTES), op.new(channels * _STAT_BYTES)
        op.replay.mark()
        op.save(op.inputs[0], mean, invstd)
        op.free(mean)
        op.free(invstd)
    return out


@forward_rule("activation")
def _activation_forward(op: _Op) -> Tensor:
    if op.in_place:
        # the backend's in-place ReLU/ReLU6/LeakyReLU: writes over its input, saves the result
        op.replay.hold(op.inputs[0].sid, TMP)
        op.replay.mark()
        op.save(op.inputs[0])
        return op.inputs[0]
    return _generic_forward(op)


def _indices(op: _Op) -> Tensor:
    elements = op.out_bytes // op.prec.activation
    return op.new(elements * _INDEX_BYTES)


def _generic_forward(op: _Op) -> Tensor:
    """The rule derived from a kind's autograd facts: the output, then what backward saves."""
    facts = op.node.autograd()
    if facts.view:
        return _alias_forward(op)
    out = op.new(op.out_bytes)
    extras = {"indices": _indices(op)} if "indices" in facts.saves else {}
    if facts.statistics:  # mean and inverse std per sample, fp32 whatever the activations
        extras["mean"] = op.new(op.batch * facts.statistics * _STAT_BYTES)
        extras["rstd"] = op.new(op.batch * facts.statistics * _STAT_BYTES)
    op.replay.mark()
    saved: list[Tensor] = []
    for what in facts.saves:
        if what == "input":
            saved.append(op.inputs[0])
        elif what == "inputs":
            saved.extend(op.inputs)
        elif what == "output":
            saved.append(out)
        else:
            saved.append(extras[what])
    saved.extend(extras[name] for name in ("mean", "rstd") if name in extras)
    op.save(*saved)
    for extra in extras.values():
        op.free(extra)
    return out


@forward_rule("lrn")
def _lrn_forward(op: _Op) -> Tensor:
    """F.local_response_norm: x*x, pad, avg_pool3d, *alpha, +k, **beta, x / that."""
    node = op.node
    x = op.inputs[0]
    channels = concrete_shape(node.shape, node.name)[0]
    size = node.size  # type: ignore[attr-defined]
    square = op.new(x.nbytes)
    op.replay.mark()
    op.save(x)
    padded = op.new(x.nbytes * (channels + size - 1) // channels)
    op.replay.mark()
    op.free(square)
    pooled = op.new(x.nbytes)
    op.replay.mark()
    op.save(padded)
    op.free(padded)
    # div.mul(alpha).add(k).pow(beta): the name `div` keeps the pooled sum alive until the
    # whole chain is evaluated; each link frees the previous temporary
    scaled = op.new(x.nbytes)
    op.replay.mark()
    shifted = op.new(x.nbytes)
    op.replay.mark()
    op.free(scaled)
    powered = op.new(x.nbytes)
    op.replay.mark()
    op.save(shifted)
    op.free(shifted)
    op.free(pooled)
    out = op.new(op.out_bytes)
    op.replay.mark()
    op.save(powered)
    op.free(powered)
    return out


@forward_rule("dropout")
def _dropout_forward(op: _Op) -> Tensor:
    if not op.training:
        op.replay.hold(op.inputs[0].sid, TMP)
        return op.inputs[0]
    if op.device == "cuda":
        out = op.new(op.out_bytes)
        mask = op.new(op.out_bytes // op.prec.activation)  # native_dropout's bool mask
        op.replay.mark()
        op.save(mask)
        op.free(mask)
        return out
    noise = op.new(op.out_bytes)  # CPU: empty_like(x).bernoulli_().div_(), then x * noise
    op.replay.mark()
    out = _out(op)
    op.save(noise)
    op.free(noise)
    return out


def _alias_forward(op: _Op) -> Tensor:
    op.replay.hold(op.inputs[0].sid, TMP)
    return op.inputs[0]


@forward_rule("add")
def _add_forward(op: _Op) -> Tensor:
    out = _out(op)
    for _ in op.inputs[2:]:  # a + b + c: each further operand makes a new sum
        total = op.new(op.out_bytes)
        op.replay.mark()
        op.free(out)
        out = total
    return out


# ---------------------------------------------------------------------------------------------
# backward rules: given the gradient of the output, allocate the gradients of the inputs


@dataclass
class _Back:
    """What a backward rule sees."""

    op: _Op
    grad: Tensor
    needs: list[bool]
    param_grads: list[int] = field(default_factory=list)

    def grad_like(self, index: int) -> Tensor | None:
        """A new gradient the size of input ``index`` when it requires one."""
        if not self.needs[index]:
            return None
        return self.op.new(self.op.inputs[index].nbytes)

    def parameter_gradients(self) -> None:
        """Fresh gradients of the node's parameters (kept until the step; fp32 in mixed)."""
        prec = self.op.prec
        for elements in parameter_tensors(self.op.node):
            sid = self.op.replay.alloc(elements * prec.weight, PARAM_GRAD)
            self.param_grads.append(sid)
        if prec.half_weights and _weight_elements(self.op.node):
            # the 16-bit copy's gradient, cast to fp32 by autocast's backward
            half = self.op.new(_weight_elements(self.op.node) * prec.activation)
            self.op.replay.mark()
            self.op.free(half)


PARAM_GRAD = "param-grad"
Backward = Callable[[_Back], list[Tensor | None]]
# As FORWARD: kinds whose backward is not derived from their autograd facts (_generic_backward).
BACKWARD: dict[str, Backward] = {}


def backward_rule(*kinds: str) -> Callable[[Backward], Backward]:
    """Register a kind's backward replay."""

    def register(rule: Backward) -> Backward:
        for kind in kinds:
            BACKWARD[kind] = rule
        return rule

    return register


def _back_simple(back: _Back) -> list[Tensor | None]:
    """One gradient per input, each the input's size (element-wise ops, pooling, upsample)."""
    grads = [back.grad_like(i) for i in range(len(back.op.inputs))]
    back.op.replay.mark()
    return grads


def _back_params(back: _Back) -> list[Tensor | None]:
    """conv, deconv, linear, batch norm: input gradient and parameter gradients in one call."""
    op = back.op
    if isinstance(op.node, ir.Conv) and _asymmetric(op.node) and back.needs[0]:
        padded = op.new(_padded_bytes(op))  # the gradient of the padded copy
        back.parameter_gradients()
        op.replay.mark()
        grad = op.new(op.inputs[0].nbytes)  # constant_pad_nd's backward crops it
        op.replay.mark()
        op.free(padded)
        return [grad]
    grads = [back.grad_like(0)]
    back.parameter_gradients()
    op.replay.mark()
    return grads


def _back_through(back: _Back) -> list[Tensor | None]:
    """add, views, markers: the gradient itself flows to every input (no new storage)."""
    back.op.replay.mark()
    return [back.grad if need else None for need in back.needs]


@backward_rule("mul")
def _back_mul(back: _Back) -> list[Tensor | None]:
    op = back.op
    grads: list[Tensor | None] = []
    for index, tensor in enumerate(op.inputs):
        if not back.needs[index]:
            grads.append(None)
            continue
        if tensor.nbytes < op.out_bytes:
            # broadcast operand: grad * other at full size, then summed down to its size
            full = op.new(op.out_bytes)
            op.replay.mark()
            small = op.new(tensor.nbytes)
            op.replay.mark()
            op.free(full)
            grads.append(small)
        else:
            grads.append(op.new(tensor.nbytes))
            op.replay.mark()
    return grads


@backward_rule("channel_pool")
def _back_channel_pool(back: _Back) -> list[Tensor | None]:
    """amax's backward: (grad / mask.sum(dim)) * mask with mask = (x == max)."""
    op = back.op
    if not back.needs[0]:
        return [None]
    x = op.inputs[0]
    out_elements = op.out_bytes // op.prec.activation
    temps = [op.new(x.nbytes // op.prec.activation)]  # the bool mask
    temps.append(op.new(out_elements * _INDEX_BYTES))  # its int64 count per window
    op.replay.mark()
    temps.append(op.new(op.out_bytes))  # grad / count
    op.replay.mark()
    grad = op.new(x.nbytes)
    op.replay.mark()
    for temp in temps:
        op.free(temp)
    return [grad]


@backward_rule("lrn")
def _back_lrn(back: _Back) -> list[Tensor | None]:
    """Replays the backward of the ops that F.local_response_norm is made of (see forward)."""
    op = back.op
    size = op.inputs[0].nbytes
    # div: grad / d, and -grad * x / d**2 (two temporaries at once)
    grad_x = op.new(size)
    temps = [op.new(size), op.new(size)]
    op.replay.mark()
    for temp in temps:
        op.free(temp)
    grad_d = op.new(size)
    op.replay.mark()
    # pow: grad * beta * s**(beta - 1)
    temp = op.new(size)
    op.replay.mark()
    grad_s = op.new(size)
    op.replay.mark()
    op.free(temp)
    op.free(grad_d)
    grad_p = op.new(size)  # * alpha
    op.replay.mark()
    op.free(grad_s)
    padded = op.new(size * 2)  # avg_pool3d backward: padded size (at most 2x at C >= size)
    op.replay.mark()
    op.free(grad_p)
    grad_sq = op.new(size)  # un-pad
    op.replay.mark()
    op.free(padded)
    extra = op.new(size)  # x*x backward: grad * x twice, summed
    op.replay.mark()
    op.free(grad_sq)
    op.free(extra)
    return [grad_x if back.needs[0] else None]


def _generic_backward(back: _Back) -> list[Tensor | None]:
    """The rule derived from the facts: gradient views, parameters, or one gradient per input."""
    if back.op.node.autograd().grad_view:
        return _back_through(back)
    if parameter_tensors(back.op.node):
        return _back_params(back)
    return _back_simple(back)


# ---------------------------------------------------------------------------------------------
# the passes


def activation_elements(network: ir.Network) -> dict[str, int]:
    """Elements of each node's output for one sample."""
    return {node.name: math.prod(concrete_shape(node.shape, node.name)) for node in network.nodes}


@dataclass
class Breakdown:
    """The parts of an estimate, in bytes."""

    weights: int
    buffers: int
    optimizer_state: int
    forward_peak: int
    backward_peak: int = 0
    step_peak: int = 0
    saved: int = 0

    @property
    def peak(self) -> int:
        """The largest total over the phases."""
        return max(self.forward_peak, self.backward_peak, self.step_peak)


def estimate(network: ir.Network, kind: str = "training", batch: int = 1, dtype: str = "fp32",
             optimizer: str = "sgd", device: str = "cpu",
             events: list[Event] | None = None) -> Breakdown:
    """Replay inference or one training step and return the peak and its parts.

    With ``events``, a list, it receives the timeline: one :class:`Event` per node and phase.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown memory kind '{kind}'; use inference or training")
    if device not in DEVICES:
        raise ValueError(f"unknown device '{device}'; use cpu or cuda")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    prec = precision(dtype)
    training = kind == "training"
    slots = _optimizer_slots(optimizer) if training else 0
    replay = _Replay(round_to=_CUDA_BLOCK if device == "cuda" else 1, events=events)
    tensors_per_node = [parameter_tensors(node) for node in network.nodes]
    weights = sum(replay.sizes[replay.alloc(n * prec.weight, "weights")]
                  for counts in tensors_per_node for n in counts)
    buffers = sum(replay.sizes[replay.alloc(_buffer_bytes(node, prec), "buffers")]
                  for node in network.nodes if _buffer_bytes(node, prec))
    state = 0
    for counts in tensors_per_node:
        for n in counts:
            for _ in range(slots):
                state += replay.sizes[replay.alloc(n * prec.weight, "state")]
            if optimizer in ("adam", "adamw") and training:
                state += replay.sizes[replay.alloc(4, "state")]  # the step counter
    replay.mark()
    replay.record("setup", "weights")

    tensors, saved_by = _forward(network, replay, batch, prec, training, device)
    breakdown = Breakdown(weights, buffers, state, replay.peak)
    if not training:
        return breakdown
    breakdown.saved = sum(replay.sizes[s] for s in {s for sids in saved_by.values() for s in sids})
    replay.peak = 0
    _backward(network, replay, tensors, saved_by, batch, prec, device)
    breakdown.backward_peak = replay.peak
    replay.peak = 0
    replay.mark()
    largest = max((n for counts in tensors_per_node for n in counts), default=0)
    total = sum(n for counts in tensors_per_node for n in counts)
    if optimizer in ("adam", "adamw"):
        temps = [largest, largest] if device == "cpu" else [total]
        for elements in temps:
            replay.alloc(elements * prec.weight, TMP)
        replay.mark()
    breakdown.step_peak = replay.peak
    replay.record("step", optimizer)
    return breakdown


def in_place_nodes(network: ir.Network) -> set[str]:
    """Nodes that the PyTorch backend runs in place (it asks the same table the backend uses)."""
    from cnndsl.backends.torch import ops

    context = ops.Context.of(network)
    names = set()
    for node in network.nodes:
        if isinstance(node, ir.Activation):
            call = ops.module_call(node, context)
            if any(key == "inplace" and value for key, value, _ in call.kwargs):
                names.add(node.name)
    return names


def _forward(network: ir.Network, replay: _Replay, batch: int, prec: Precision,
             training: bool, device: str) -> tuple[dict[str, Tensor], dict[str, list[int]]]:
    elements = activation_elements(network)
    in_place = in_place_nodes(network)
    by_name = network.by_name()
    readers = {name: len(names) for name, names in network.consumers().items()}
    outputs = set(network.outputs.values())
    tensors: dict[str, Tensor] = {}
    saved_by: dict[str, list[int]] = {}
    requires = _requires_grad(network)
    for node in network.nodes:
        out_bytes = batch * elements[node.name] * prec.activation
        op = _Op(replay, node, [tensors[name] for name in node.inputs], out_bytes, batch, prec,
                 training, device, node.name in in_place, _input_shape(node, by_name),
                 records=requires[node.name])
        out = FORWARD.get(node.kind, _generic_forward)(op)
        # hand the output from the operator to the graph; the input is the caller's
        holder = ("user",) if isinstance(node, ir.Input) else ("live", node.name)
        replay.hold(out.sid, holder)
        replay.drop(out.sid, TMP)
        tensors[node.name] = out
        saved_by[node.name] = op.saved
        for name in node.inputs:
            readers[name] -= 1
            if readers[name] == 0 and name not in outputs:
                replay.drop(tensors[name].sid, ("live", name))
        replay.record("forward", node.name)
    if training:
        _loss(network, replay, prec)
    for name in outputs:  # the loss (a sum) has been taken; outputs are needed no more
        replay.drop(tensors[name].sid, ("live", name))
    for sid in list(replay.holders):
        replay.drop(sid, CACHE)
    return tensors, saved_by


def _loss(network: ir.Network, replay: _Replay, prec: Precision) -> None:
    """The sum of the outputs' sums, taken while the outputs are alive; it lives on as "loss".

    As the measured step computes it: ``part = out.sum()`` per output, ``total = total + part``
    from the second on, each name dropping its old scalar only when rebound.
    """
    part = total = None
    for _ in network.outputs:
        new_part = replay.alloc(prec.activation, TMP)
        replay.mark()
        if part is not None and part != total:
            replay.drop(part, TMP)
        part = new_part
        if total is None:
            total = part
            continue
        new_total = replay.alloc(prec.activation, TMP)
        replay.mark()
        if total != part:
            replay.drop(total, TMP)
        total = new_total
    if part is not None and part != total:
        replay.drop(part, TMP)
    if total is not None:
        replay.hold(total, "loss")
        replay.drop(total, TMP)


def _input_shape(node: ir.Node, by_name: dict[str, ir.AnyNode]) -> tuple[int, ...]:
    if not node.inputs:
        return ()
    source = by_name[node.inputs[0]]
    return concrete_shape(source.shape, source.name)


def _requires_grad(network: ir.Network) -> dict[str, bool]:
    needs: dict[str, bool] = {}
    for node in network.nodes:
        own = bool(parameter_tensors(node)) and node.trainable
        needs[node.name] = own or any(needs[name] for name in node.inputs)
    return needs


def _backward(network: ir.Network, replay: _Replay, tensors: dict[str, Tensor],
              saved_by: dict[str, list[int]], batch: int, prec: Precision, device: str) -> None:
    requires = _requires_grad(network)
    by_name = network.by_name()
    grads: dict[str, Tensor] = {}
    # the scalar loss ("loss", made at the end of the forward) stays alive through backward
    seed = replay.alloc(prec.activation, TMP)  # d(loss)/d(loss) = 1; each output's gradient
    for name in network.outputs.values():  # is a broadcast view of it
        if requires[name] and name not in grads:
            replay.hold(seed, ("grad", name))
            grads[name] = Tensor(seed, 0)
    replay.drop(seed, TMP)
    for node in reversed(network.nodes):
        grad = grads.pop(node.name, None)
        if grad is None:
            for sid in saved_by.get(node.name, ()):
                replay.drop(sid, ("saved", node.name))
            replay.record("backward", node.name)
            continue
        op = _Op(replay, node, [tensors[name] for name in node.inputs], grad.nbytes, batch,
                 prec, True, device, False, _input_shape(node, by_name))
        op.out_bytes = batch * math.prod(concrete_shape(node.shape, node.name)) * prec.activation
        back = _Back(op, grad, [requires[name] for name in node.inputs])
        results = BACKWARD.get(node.kind, _generic_backward)(back)
        for name, result in zip(node.inputs, results, strict=True):
            if result is not None:
                replay.hold(result.sid, ("incoming", name))
        replay.drop(grad.sid, ("grad", node.name))
        for sid in saved_by.get(node.name, ()):
            replay.drop(sid, ("saved", node.name))
        for result in results:
            if result is not None:
                replay.drop(result.sid, TMP)
        for name, result in zip(node.inputs, results, strict=True):
            if result is not None:
                _accumulate(replay, grads, name, result)
        replay.record("backward", node.name)


def _accumulate(replay: _Replay, grads: dict[str, Tensor], name: str, new: Tensor) -> None:
    """Add a gradient into a tensor's input buffer.

    Measured: PyTorch's InputBuffer sums the gradients of a tensor read twice out of place
    (``aten.add``, never ``add_``) in eager CPU training, so old, new and the sum coexist.
    """
    old = grads.get(name)
    if old is None:
        replay.hold(new.sid, ("grad", name))
        replay.drop(new.sid, ("incoming", name))
        grads[name] = new
        return
    total = Tensor(replay.alloc(max(old.nbytes, new.nbytes), ("grad", name)), old.nbytes)
    replay.mark()
    replay.drop(old.sid, ("grad", name))
    replay.drop(new.sid, ("incoming", name))
    grads[name] = total


def timeline(network: ir.Network, kind: str = "training", batch: int = 1, dtype: str = "fp32",
             optimizer: str = "sgd", device: str = "cpu") -> list[Event]:
    """The replay step by step: live bytes after each node's forward and backward, and the step."""
    events: list[Event] = []
    estimate(network, kind, batch, dtype, optimizer, device, events)
    return events


def peak_bytes(network: ir.Network, kind: str = "training", batch: int = 1, dtype: str = "fp32",
               optimizer: str = "sgd", device: str = "cpu") -> int:
    """The estimated peak in bytes of inference or one training step."""
    return estimate(network, kind, batch, dtype, optimizer, device).peak


def largest_batch(network: ir.Network, kind: str, budget: int, dtype: str = "fp32",
                  optimizer: str = "sgd", device: str = "cpu", limit: int = 1 << 20) -> int:
    """The largest batch whose estimated peak is at most ``budget`` bytes (0 if none fits)."""

    def fits(batch: int) -> bool:
        return peak_bytes(network, kind, batch, dtype, optimizer, device) <= budget

    if not fits(1):
        return 0
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:  # fits(low), not fits(high)
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


MAX_BYTES = 2**62  # 4 EiB: a bound on budgets, far past any machine, that float and int agree on


def parse_bytes(text: str) -> int:
    """``16GiB``, ``512 MB`` or a plain number of bytes, from 0 to MAX_BYTES."""
    cleaned = text.strip().replace(" ", "").replace("_", "")
    value: float | None = None
    for unit in sorted(_UNITS, key=len, reverse=True):
        if cleaned.endswith(unit):
            with contextlib.suppress(ValueError):  # not a number: reported below
                value = float(cleaned[: -len(unit)]) * _UNITS[unit]
            break
    if value is None:
        try:
            value = float(cleaned)
        except ValueError:
            raise ValueError(f"cannot read a size from {text[:40]!r}; write e.g. 16GiB or "
                             "512MB") from None
    if cleaned.isdigit() and len(cleaned) < 19:
        return int(cleaned)  # exact, where a float would round
    return checked_bytes(value, text)


def checked_bytes(value: float, text: object) -> int:
    """A byte count from 0 to MAX_BYTES; float("1e999") is infinity and "nan" no number, so the
    bound is checked before int() (which raised OverflowError)."""
    if not 0 <= value <= MAX_BYTES:
        shown = str(text)[:40]
        raise ValueError(f"a size must be from 0 to {MAX_BYTES:,} bytes (4 EiB), got {shown!r}")
    return int(value)


def format_bytes(count: float) -> str:
    """Binary units with three significant digits: ``1.23 GiB``."""
    value = float(count)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if abs(value) < 1024:
            return f"{value:.3g} {unit}"
    return f"{value / 1024:.3g} TiB"


__all__ = [
    "BACKWARD", "DTYPES", "FORWARD", "KINDS", "OPTIMIZERS", "Breakdown", "Event", "Precision",
    "activation_elements", "estimate", "format_bytes", "largest_batch", "parameter_tensors",
    "parse_bytes", "peak_bytes", "precision", "timeline",
]
