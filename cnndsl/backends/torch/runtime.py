"""The live PyTorch module of a checked network: ``to_torch(spec) -> nn.Module``.

Structure. Every IR node that has a module (see :mod:`cnndsl.backends.torch.ops`) lives at its
spec path: node ``layer3.2.conv1`` is ``model.layer3[2].conv1`` (``model.layer3.get_submodule
("2.conv1")`` works too), inside :class:`Scope` containers named by the path segments, so its
``state_dict`` keys are ``layer3.2.conv1.weight``. Modules are registered in node order; when
every scope's nodes are contiguous in that order (as in every seed spec) the parameters follow
the spec exactly, so a reference model's weights load by name or by order (:func:`load_weights`).
``add``, ``mul``, ``concat`` and ``flatten`` are tensor operations in ``forward``.

Calling. One input: ``model(x)``. Several: positional in declaration order, or keywords by input
name (``model(image=x, depth=d)``). One output: a tensor. Several outputs: a dict from output
name to tensor, in the order of the spec's ``output`` line. :meth:`SpecModule.trace` returns
every named tensor (shapes are reliable; an in-place ReLU overwrites its producer's values, as in
torchvision).

Initialisation (seeded by ``seed``, independent of the global RNG) follows each kind's state
(:meth:`cnndsl.ops.base.Node.state`): convolutions and transposed convolutions Kaiming normal
with fan_out and ReLU gain, bias 0 (torchvision's ResNet); batch norm weight 1, bias 0, running
mean 0, running variance 1; linear layers PyTorch's default (Kaiming uniform with a = sqrt(5),
bias uniform in +-1/sqrt(fan_in)), which torchvision's ResNet keeps. Modules are built on the
meta device first, so construction does not touch the
global RNG and no weight is initialised twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnndsl import ir
from cnndsl.backends.torch.modules import HELPERS
from cnndsl.backends.torch.ops import FUNCTIONS, Call, Context, module_call
from cnndsl.ops.base import State
from cnndsl.weights.match import Match


class Scope(nn.Module):
    """A scope of the spec (``layer3``, ``layer3.2``): children named by path segments."""

    def __getitem__(self, key: int | str) -> nn.Module:
        module = self._modules[str(key)]
        assert module is not None
        return module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(m for m in self._modules.values() if m is not None)

    def forward(self, *args: Any) -> Any:
        raise TypeError("a Scope only holds modules; call the network instead")


def instantiate(call: Call) -> nn.Module:
    """Evaluate a :class:`Call` into a module."""
    owner, _, name = call.func.partition(".")
    factory = getattr(nn, name) if owner == "nn" else HELPERS[call.func]
    return factory(*call.args, **{k: v for k, v, _ in call.kwargs})  # type: ignore[no-any-return]


def _add(values: list[torch.Tensor]) -> torch.Tensor:
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


def _mul(values: list[torch.Tensor]) -> torch.Tensor:
    return values[0] * values[1]


def _concat(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(values, 1)


def _flatten(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.flatten(values[0], 1)


OPERATIONS = {"add": _add, "mul": _mul, "concat": _concat, "flatten": _flatten}


@dataclass(frozen=True)
class _Step:
    name: str
    module: nn.Module | None
    operation: Callable[[list[torch.Tensor]], torch.Tensor] | None
    inputs: tuple[str, ...]
    release: tuple[str, ...]  # tensors nobody reads after this step


class SpecModule(nn.Module):
    """A network of a spec as an ``nn.Module``; see the module docstring for the conventions."""

    def __init__(self, network: ir.Network, *, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.spec_name = network.name
        self.input_names = list(network.inputs)
        self.output_names = dict(network.outputs)
        self._spec_nodes: dict[str, ir.Node] = dict(network.by_name())
        context = Context.of(network)
        with torch.device("meta"):
            modules = {
                node.name: instantiate(module_call(node, context))
                for node in network.nodes
                if node.kind not in FUNCTIONS
            }
        for path, module in modules.items():
            self._place(path, module)
        self.to_empty(device="cpu")
        initialize(self, seed)
        if device is not None:
            self.to(device)
        self._plan = _plan(network, modules)

    def _place(self, path: str, module: nn.Module) -> None:
        parent: nn.Module = self
        *scopes, leaf = path.split(".")
        for segment in scopes:
            child = parent._modules.get(segment)
            if child is None:
                child = Scope()
                _register(parent, segment, child, path)
            elif not isinstance(child, Scope):
                raise ValueError(f"spec path {path!r} nests inside layer {segment!r}")
            parent = child
        if leaf in parent._modules:
            raise ValueError(f"spec path {path!r} is both a layer and a scope")
        _register(parent, leaf, module, path)

    def _bind(self, args: tuple[torch.Tensor, ...],
              kwargs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(args) > len(self.input_names):
            raise TypeError(f"{self.spec_name} takes {len(self.input_names)} input(s), "
                            f"got {len(args)}")
        env = dict(zip(self.input_names, args, strict=False))
        for name, value in kwargs.items():
            if name not in self.input_names or name in env:
                raise TypeError(f"{self.spec_name}: unexpected or repeated input {name!r}")
            env[name] = value
        missing = [name for name in self.input_names if name not in env]
        if missing:
            raise TypeError(f"{self.spec_name}: missing input(s) {', '.join(missing)}")
        return env

    def _run(self, env: dict[str, torch.Tensor], keep: bool) -> dict[str, torch.Tensor]:
        for step in self._plan:
            values = [env[name] for name in step.inputs]
            if step.module is not None:
                env[step.name] = step.module(*values)
            else:
                assert step.operation is not None
                env[step.name] = step.operation(values)
            if not keep:
                for name in step.release:
                    del env[name]
        return env

    def forward(self, *inputs: torch.Tensor,
                **named: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """One output: a tensor; several: a dict from output name to tensor."""
        env = self._run(self._bind(inputs, named), keep=False)
        if len(self.output_names) == 1:
            return env[next(iter(self.output_names.values()))]
        return {name: env[node] for name, node in self.output_names.items()}

    def trace(self, *inputs: torch.Tensor, **named: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every tensor of the network by node name (inputs included), for inspection."""
        return self._run(self._bind(inputs, named), keep=True)


_NN_ATTRIBUTES = frozenset(dir(nn.Module))


def _register(parent: nn.Module, segment: str, module: nn.Module, path: str) -> None:
    if segment in _NN_ATTRIBUTES or segment in vars(parent):
        raise ValueError(f"spec path {path!r}: segment {segment!r} clashes with an nn.Module "
                         "attribute; rename the label")
    parent.add_module(segment, module)


def _plan(network: ir.Network, modules: dict[str, nn.Module]) -> list[_Step]:
    """The execution order with, after each step, the tensors that are no longer needed."""
    last_use: dict[str, int] = {}
    steps = [node for node in network.nodes if node.kind != "input"]  # type: ignore[attr-defined]
    for index, node in enumerate(steps):
        for source in node.inputs:
            last_use[source] = index
    keep = set(network.outputs.values())
    release: dict[int, list[str]] = {}
    for name, index in last_use.items():
        if name not in keep:
            release.setdefault(index, []).append(name)
    return [
        _Step(
            node.name,
            modules.get(node.name),
            OPERATIONS.get(node.kind),  # type: ignore[attr-defined]
            tuple(node.inputs),
            tuple(release.get(i, ())),
        )
        for i, node in enumerate(steps)
    ]


def _initialize_tensor(tensor: torch.Tensor, state: State,
                       generator: torch.Generator) -> None:
    if state.init == "kaiming_normal":
        nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu", generator=generator)
    elif state.init == "kaiming_uniform":
        nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)
    elif state.init == "uniform":
        bound = 1 / math.sqrt(state.fan) if state.fan else 0.0
        nn.init.uniform_(tensor, -bound, bound, generator=generator)
    elif state.init == "ones":
        nn.init.ones_(tensor)
    elif state.init == "zeros":
        nn.init.zeros_(tensor)
    else:
        raise ValueError(f"unknown initialisation {state.init!r} of {state.name}")


def initialize(module: SpecModule, seed: int = 0) -> None:
    """Re-initialise every layer from its kind's state (``Node.state``), from ``seed``.

    Layers are visited in module order and each one's tensors in state order, so that the
    random stream is the same for the same network.
    """
    generator = torch.Generator().manual_seed(seed)
    nodes = module._spec_nodes
    with torch.no_grad():
        for path, layer in module.named_modules():
            node = nodes.get(path)
            if node is None:
                continue
            for state in node.state():
                tensor = getattr(layer, state.name)
                _initialize_tensor(tensor, state, generator)


def to_torch(spec: ir.Network | str | Path, *, seed: int = 0,
             device: torch.device | str | None = None, **load_options: Any) -> SpecModule:
    """The live module of a network, a spec path or spec text (``load_options`` go to load)."""
    if isinstance(spec, ir.Network):
        network = spec
    else:
        from cnndsl.compiler import load

        network = load(spec, **load_options)
    return SpecModule(network, seed=seed, device=device)


def _source(weights: nn.Module | Mapping[str, Any] | str | Path) -> tuple[dict[str, Any], str,
                                                                         bool]:
    if isinstance(weights, nn.Module):
        return dict(weights.state_dict()), type(weights).__name__, True
    if isinstance(weights, str | Path):
        from cnndsl.weights.files import read_checkpoint
        from cnndsl.weights.load import source_name

        checkpoint = read_checkpoint(weights)
        return checkpoint.tensors, source_name(checkpoint), checkpoint.ordered
    return dict(weights), "state_dict", True


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    import numpy as np

    return torch.from_numpy(np.require(value, requirements="W"))  # numpy: from a file


def load_weights(module: nn.Module, weights: nn.Module | Mapping[str, Any] | str | Path, *,
                 by: str = "auto", rename: Mapping[str, str] | Sequence[tuple[str, str]] = (),
                 strict: bool = True) -> Match:
    """Copy parameters and buffers from another implementation or a checkpoint into ``module``.

    ``weights`` is a module, a state dict, or a checkpoint file (``.pt``, ``.safetensors``,
    ``.npz``, containers such as ``{"model": ...}`` included). ``by`` is ``"name"``, ``"order"``
    (the source's module tree in order, siblings reordered where only that fits) or ``"auto"``
    (names, then order for the rest); ``rename`` rewrites key prefixes (old -> new) first; see
    :mod:`cnndsl.weights.match`. Under ``strict`` nothing is copied unless every tensor of both
    sides is paired, and a :class:`~cnndsl.weights.WeightsError` (a ValueError) carries the
    report; otherwise what fits is copied and the report tells the rest. Returns the match:
    ``.pairs`` (target -> source key) and ``.report``.
    """
    from cnndsl.weights.load import WeightsError
    from cnndsl.weights.match import match_weights

    tensors, name, ordered = _source(weights)
    target = module.state_dict()
    rules = list(rename.items()) if isinstance(rename, Mapping) else list(rename)
    match = match_weights([(key, tuple(value.shape)) for key, value in target.items()], tensors,
                          by=by, rename=rules, source_name=name,
                          network=getattr(module, "spec_name", type(module).__name__),
                          ordered=ordered)
    if strict and not match.report.ok:
        raise WeightsError([match.report.diagnostic(strict=True)])
    with torch.no_grad():
        for target_key, source_key in {**match.pairs, **match.counters}.items():
            ours = target[target_key]
            ours.copy_(_as_tensor(tensors[source_key]).reshape(ours.shape))
    return match
