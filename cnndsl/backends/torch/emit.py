"""Readable, standalone PyTorch source for a checked network (``cnndsl compile --to torch``).

The generated file imports only torch. It holds one class per block definition (parameterised
by the values that differ between the block's instances; a sub-layer that only some instances
have, like ResNet's ``downsample``, becomes a boolean flag), then the network class. Layers keep
the spec's names, so the generated module and :func:`cnndsl.to_torch` have the same
``state_dict`` keys in the same order, and give identical outputs for the same weights. Layer
constructors come from the table in :mod:`cnndsl.backends.torch.ops`, shared with the runtime.

How a scope of the spec is written: a block instance is an instance of its class; a scope whose
children are ``0, 1, 2, ...`` chained one after the other is an ``nn.Sequential``; any other
scope is an ``nn.ModuleDict`` whose layers are called one by one in the enclosing ``forward``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import keyword
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.backends.torch.ops import (
    CLASSES,
    FUNCTIONS,
    HELPER_CLASSES,
    REQUIRED,
    Call,
    Context,
    module_call,
)
from cnndsl.diagnostics import CnnError
from cnndsl.ops import REGISTRY
from cnndsl.syntax import ast

WIDTH = 100
RESERVED = frozenset({"self", "torch", "nn", "F", "Tensor", "super"}) | frozenset(keyword.kwlist)


@dataclass(frozen=True)
class DictExpr:
    """``nn.ModuleDict({...})`` contents."""

    items: tuple[tuple[str, Any], ...]


@dataclass
class Tree:
    """The scopes of the spec: a leaf holds a node, a scope its children by segment."""

    path: str
    node: ir.Node | None = None
    children: dict[str, Tree] = field(default_factory=dict)

    def nodes(self) -> Iterable[ir.Node]:
        """Every node under this scope, in node order."""
        if self.node is not None:
            yield self.node
        for child in self.children.values():
            yield from child.nodes()


@dataclass(frozen=True)
class Step:
    """One line of ``forward``: a module call (``attribute``) or a tensor operation (``op``)."""

    member: str
    attribute: str | None
    op: str | None
    inputs: tuple[str, ...]
    output: str


@dataclass
class Member:
    """A direct child of a class: an attribute built in ``__init__`` and its forward steps."""

    segment: str
    expr: Any  # Call or DictExpr; None for a tensor operation
    steps: list[Step]
    unit: bool  # a single call from one input to one output


@dataclass
class Body:
    """One instance's view of a class: members in order, input and output tensors."""

    root: str
    input: str
    output: str
    members: list[Member]

    @functools.cached_property
    def by_segment(self) -> dict[str, Member]:
        """The members by segment: looking one up is constant time, not a scan of all."""
        return {m.segment: m for m in self.members}


@dataclass
class Param:
    """A constructor parameter of a generated block class."""

    name: str
    annotation: str
    default: Any = REQUIRED


@dataclass
class BlockClass:
    """A generated class for (a variant of) a block definition."""

    name: str
    block: str
    params: list[Param]
    lines: list[str]
    calls: dict[str, Call]  # instance path -> constructor call


def _join(root: str, segment: str) -> str:
    return f"{root}.{segment}" if root else segment


def _relative(root: str, path: str) -> str:
    return path[len(root) + 1:] if root else path


def build_tree(network: ir.Network) -> Tree:
    """The scope tree of a network's nodes (inputs excluded)."""
    root = Tree("")
    for node in network.nodes:
        if node.kind == "input":  # type: ignore[attr-defined]
            continue
        scope = root
        for segment in node.name.split("."):
            scope = scope.children.setdefault(segment, Tree(_join(scope.path, segment)))
        scope.node = node
    return root


class Emitter:
    """Turns a network into source text; see :func:`emit`."""

    def __init__(self, network: ir.Network, definitions: Any = None) -> None:
        self.network = network
        self.definitions = definitions  # the spec's, for its defaults; None if not at hand
        self.defaults = _literal_defaults(definitions)
        self.context = Context.of(network)
        self.consumers = network.consumers()
        self.outputs = set(network.outputs.values())
        self.tree = build_tree(network)
        self.index = {node.name: i for i, node in enumerate(network.nodes)}
        self.instances = {i.path: i for i in network.instances if self._self_contained(i)}
        self.classes: dict[str, BlockClass] = {}  # instance path -> its class
        self.class_order: list[BlockClass] = []
        self.helpers: set[str] = set()

    # -- structure ---------------------------------------------------------------------------

    def _self_contained(self, instance: ir.BlockInstance) -> bool:
        inside = {n.name for n in self.network.nodes if n.name.startswith(instance.path + ".")}
        if instance.output not in inside or instance.input in inside:
            return False
        for name in inside:
            node = self.network.node(name)
            if any(s not in inside and s != instance.input for s in node.inputs):
                return False
            readers = self.consumers.get(name, [])
            leaks = any(r not in inside for r in readers) or name in self.outputs
            if leaks and name != instance.output:
                return False
        return True

    def _find(self, path: str) -> Tree:
        scope = self.tree
        for segment in path.split(".") if path else []:
            scope = scope.children[segment]
        return scope

    def _ends(self, scope: Tree) -> tuple[list[str], list[str]]:
        """Tensors a scope reads from outside, and its tensors read outside (or outputs)."""
        inside = {n.name for n in scope.nodes()}
        reads: list[str] = []
        for node in scope.nodes():
            for source in node.inputs:
                if source not in inside and source not in reads:
                    reads.append(source)
        leaves = [name for name in inside
                  if name in self.outputs or any(r not in inside for r in self.consumers[name])]
        return reads, leaves

    def _is_unit(self, scope: Tree) -> bool:
        if scope.node is not None:
            return scope.node.kind not in FUNCTIONS and len(scope.node.inputs) == 1  # type: ignore[attr-defined]
        if scope.path in self.instances:
            return True
        return self._is_sequential(scope)

    def _is_sequential(self, scope: Tree) -> bool:
        keys = list(scope.children)
        if not keys or keys != [str(i) for i in range(len(keys))]:
            return False
        previous: str | None = None
        for child in scope.children.values():
            if not self._is_unit(child):
                return False
            reads, leaves = self._ends(child)
            if len(reads) != 1 or len(leaves) != 1 or (previous and reads[0] != previous):
                return False
            previous = leaves[0]
        reads, leaves = self._ends(scope)
        return len(reads) == 1 and len(leaves) == 1 and leaves[0] == previous

    # -- expressions -------------------------------------------------------------------------

    def expr(self, scope: Tree) -> Any:
        """The constructor expression of a scope's module."""
        if scope.node is not None:
            call = module_call(scope.node, self.context)
            if not call.func.startswith("nn."):
                self.helpers.add(call.func)
            return call
        if scope.path in self.instances:
            return self.classes[scope.path].calls[scope.path]
        if self._is_sequential(scope):
            return Call("nn.Sequential", tuple(self.expr(c) for c in scope.children.values()))
        items = tuple(
            (segment, self.expr(child)) for segment, child in scope.children.items()
            if self._has_module(child)
        )
        return Call("nn.ModuleDict", (DictExpr(items),))

    def _has_module(self, scope: Tree) -> bool:
        return any(n.kind not in FUNCTIONS for n in scope.nodes())  # type: ignore[attr-defined]

    def body(self, root: str, input_name: str, output: str) -> Body:
        """The members of the class rooted at ``root``, as one instance sees them."""
        scope = self._find(root)
        members = []
        for segment, child in scope.children.items():
            unit = self._is_unit(child)
            expr = self.expr(child) if self._has_module(child) else None
            steps = list(self._steps(child, "self", segment, segment, unit))
            members.append(Member(segment, expr, steps, unit))
        return Body(root, input_name, output, members)

    def _steps(self, scope: Tree, owner: str, segment: str, member: str,
               unit: bool) -> Iterable[Step]:
        attribute = _attribute(owner, segment)
        if scope.node is not None and scope.node.kind in FUNCTIONS:  # type: ignore[attr-defined]
            node = scope.node
            yield Step(member, None, node.kind, tuple(node.inputs), node.name)  # type: ignore[attr-defined]
        elif unit:
            reads, leaves = self._ends(scope)
            yield Step(member, attribute, None, (reads[0],), leaves[0])
        else:
            children = sorted(scope.children.items(),
                              key=lambda item: min(self.index[n.name] for n in item[1].nodes()))
            for child_segment, child in children:
                yield from self._steps(child, attribute, child_segment, member,
                                       self._is_unit(child))

    # -- classes -----------------------------------------------------------------------------

    def build_classes(self) -> None:
        """Generate the block classes, innermost blocks first."""
        by_block: dict[str, list[ir.BlockInstance]] = {}
        for instance in self.instances.values():
            by_block.setdefault(instance.block, []).append(instance)
        for block in self._block_order(by_block):
            self._build_block(block, by_block[block])

    def _block_order(self, by_block: dict[str, list[ir.BlockInstance]]) -> list[str]:
        inner: dict[str, set[str]] = {block: set() for block in by_block}
        for outer in self.instances.values():
            for other in self.instances.values():
                if other.path.startswith(outer.path + "."):
                    inner[outer.block].add(other.block)
        order: list[str] = []
        while len(order) < len(inner):
            ready = [b for b in inner if b not in order and inner[b] <= set(order) | {b}]
            if not ready:  # recursion cannot happen in the language; keep a stable order anyway
                ready = [b for b in inner if b not in order]
            order.append(ready[0])
        return order

    def _build_block(self, block: str, instances: list[ir.BlockInstance]) -> None:
        bodies = {i.path: self.body(i.path, i.input, i.output) for i in instances}
        groups = _group_variants(bodies)
        base = _class_name(block)
        for number, (full, members_of) in enumerate(groups, start=1):
            name = self._unique(base if number == 1 else f"{base}{number}")
            group = [i for i in instances if i.path in members_of]
            generated = ClassWriter(self, name, block, group, bodies, full, members_of).write()
            self.class_order.append(generated)
            for instance in group:
                self.classes[instance.path] = generated

    def _unique(self, name: str) -> str:
        taken = {c.name for c in self.class_order} | HELPER_CLASSES
        candidate, number = name, 2
        while candidate in taken:
            candidate, number = f"{name}{number}", number + 1
        return candidate

    def channels(self, tensor: str) -> int:
        """The channel (feature) count of a tensor."""
        shape = self.network.node(tensor).shape
        assert shape is not None
        return int(shape[0])  # type: ignore[arg-type]


def _attribute(owner: str, segment: str) -> str:
    if segment.isidentifier() and not keyword.iskeyword(segment):
        return f"{owner}.{segment}"
    return f'{owner}["{segment}"]'


def _class_name(name: str) -> str:
    parts = [p for p in name.replace("-", "_").split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Block"
    return text if text[0].isalpha() else f"Block{text}"


def _signature(body: Body, members: Iterable[Member] | None = None) -> tuple[Any, ...]:
    """What must agree between instances that share a class (values aside)."""
    chosen = list(body.members if members is None else members)

    def relative(tensor: str) -> str:
        return "<in>" if tensor == body.input else _relative(body.root, tensor)

    return (
        tuple((m.segment, _structure(m.expr), m.unit) for m in chosen),
        tuple(
            (s.member, s.attribute, s.op, tuple(relative(t) for t in s.inputs), relative(s.output))
            for m in chosen for s in m.steps
        ),
        relative(body.output),
    )


def _structure(expr: Any) -> Any:
    if isinstance(expr, Call):
        return (expr.func, tuple(_structure(a) for a in expr.args),
                tuple((k, _structure(v)) for k, v, _ in expr.kwargs))
    if isinstance(expr, DictExpr):
        return ("dict", tuple((k, _structure(v)) for k, v in expr.items))
    return "#"


def _without(body: Body, optional: set[str]) -> tuple[Any, ...] | None:
    """The signature of ``body`` with optional unit members removed and bypassed."""
    rename: dict[str, str] = {}
    kept = []
    for member in body.members:
        if member.segment in optional:
            if not member.unit or len(member.steps) != 1:
                return None
            step = member.steps[0]
            rename[step.output] = rename.get(step.inputs[0], step.inputs[0])
        else:
            kept.append(member)
    bypassed = [
        Member(m.segment, m.expr, [
            Step(s.member, s.attribute, s.op, tuple(rename.get(t, t) for t in s.inputs), s.output)
            for s in m.steps
        ], m.unit)
        for m in kept
    ]
    renamed = Body(body.root, body.input, rename.get(body.output, body.output), bypassed)
    return _signature(renamed)


def _group_variants(bodies: dict[str, Body]) -> list[tuple[Body, set[str]]]:
    """Instances grouped into classes: (the fullest body, instance paths) per class."""
    groups: list[tuple[Body, set[str]]] = []
    for path, body in sorted(bodies.items(), key=lambda item: -len(item[1].members)):
        signature = _signature(body)
        for full, paths in groups:
            present = {m.segment for m in body.members}
            optional = {m.segment for m in full.members} - present
            if present <= {m.segment for m in full.members} and (
                _signature(full) == signature
                or (optional and _without(full, optional) == signature)
            ):
                paths.add(path)
                break
        else:
            groups.append((body, {path}))
    return groups


class ClassWriter:
    """Writes one block class from its instances' bodies."""

    def __init__(self, emitter: Emitter, name: str, block: str,
                 instances: list[ir.BlockInstance], bodies: dict[str, Body], full: Body,
                 paths: set[str]) -> None:
        self.emitter = emitter
        self.name = name
        self.block = block
        self.instances = [i for i in instances if i.path in paths]
        self.bodies = bodies
        self.full = full
        self.envs = {i.path: self._environment(i) for i in self.instances}
        self.used: list[str] = []
        self.extra: dict[str, dict[str, Any]] = {}  # fallback parameter -> value per instance
        self.flags = [m.segment for m in full.members
                      if any(m.segment not in bodies[i.path].by_segment for i in self.instances)]

    def _environment(self, instance: ir.BlockInstance) -> dict[str, Any]:
        env: dict[str, Any] = {"in_channels": self.emitter.channels(instance.input)}
        for key, value in instance.arguments.items():
            if key != "in_channels":
                env[_identifier(key)] = _normal(value)
        return env

    def write(self) -> BlockClass:
        init = ["        super().__init__()"]
        for member in self.full.members:
            if member.expr is None:
                continue
            owners = [i.path for i in self.instances
                      if member.segment in self.bodies[i.path].by_segment]
            exprs = {p: self.bodies[p].by_segment[member.segment].expr for p in owners}
            text = self.render(exprs, member.segment)
            target = _attribute("self", member.segment)
            if member.segment in self.flags:
                init.append(f"        {target} = None")
                init.append(f"        if {_identifier(member.segment)}:")
                init.extend(_assign(target, text, 12))
            else:
                init.extend(_assign(target, text, 8))
        params = self._params()
        calls = {i.path: self._call(i, params) for i in self.instances}
        paths = ", ".join(sorted((i.path for i in self.instances),
                                 key=lambda p: self.emitter.index[self.bodies[p].output]))
        doc = f'    """Block ``{self.block}`` of the spec, at {paths}."""'
        if len(doc) > WIDTH:
            doc = (f'    """Block ``{self.block}`` of the spec '
                   f'({len(self.instances)} instances)."""')
        header = _signature_lines(params)
        forward = ForwardWriter(self.full, ["x"], protected=set(), flags=set(self.flags),
                                order=self.emitter.index).write()
        lines = [f"class {self.name}(nn.Module):", doc, "", *header, *init, "", *forward]
        return BlockClass(self.name, self.block, params, lines, calls)

    def render(self, exprs: dict[str, Any], where: str) -> Any:
        """The source of one expression, with values that vary replaced by parameters."""
        return _render(exprs, where, self._value)

    def _value(self, values: dict[str, Any], where: str) -> str:
        distinct = set(map(repr, values.values()))
        first = next(iter(values.values()))
        if len(distinct) == 1:
            return _literal(first)
        names = list(self.envs[next(iter(values))])
        for name in names:
            if all(self.envs[p].get(name) == v for p, v in values.items()):
                return self._use(name)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
            for name in names:
                found = _scaled(name, {p: self.envs[p].get(name) for p in values}, values)
                if found:
                    self._use(name)
                    return found
        parameter = _identifier(where)
        self.extra[parameter] = {p: values.get(p) for p in self.envs}
        return self._use(parameter)

    def _use(self, name: str) -> str:
        if name not in self.used:
            self.used.append(name)
        return name

    def _params(self) -> list[Param]:
        first = self.instances[0].path
        positions: dict[str, list[int]] = {}
        for instance in self.instances:
            for position, key in enumerate(instance.arguments):
                positions.setdefault(_identifier(key), []).append(position)
        ordered = ["in_channels", *sorted(
            (n for n in self.envs[first] if n != "in_channels"),
            key=lambda n: sum(positions.get(n, [0])) / len(positions.get(n, [0])),
        )]
        names = [n for n in ordered if n in self.used] + list(self.extra)
        required: list[Param] = []
        optional: list[Param] = []
        spec_defaults = self.emitter.defaults.get(self.block)
        for number, name in enumerate(names):
            values = [self._value_of(name, i.path) for i in self.instances]
            common = _common(values)
            majority = sum(v == common for v in values) * 2 > len(values)
            default = (spec_defaults or {}).get(name, _UNKNOWN)
            if default is REQUIRED or (number < 2 and default is not _UNKNOWN):
                required.append(Param(name, _annotation(values)))
            elif default is not _UNKNOWN:  # the definition's own default
                optional.append(Param(name, _annotation([*values, default]), default))
            elif number < 2 or not majority:
                required.append(Param(name, _annotation(values)))
            else:
                optional.append(Param(name, _annotation(values), common))
        params = required + optional
        params.extend(Param(_identifier(flag), "bool", False) for flag in self.flags)
        return params

    def _value_of(self, name: str, path: str) -> Any:
        if name in self.extra:
            return self.extra[name][path]
        return self.envs[path][name]

    def _call(self, instance: ir.BlockInstance, params: list[Param]) -> Call:
        present = self.bodies[instance.path].by_segment
        args: list[Any] = []
        kwargs: list[tuple[str, Any, Any]] = []
        for position, param in enumerate(params):
            if param.annotation == "bool" and param.name in map(_identifier, self.flags):
                flag = next(f for f in self.flags if _identifier(f) == param.name)
                kwargs.append((param.name, flag in present, False))
            elif position < 2 and param.default is REQUIRED:
                args.append(self._value_of(param.name, instance.path))
            else:
                value = self._value_of(param.name, instance.path)
                kwargs.append((param.name, value, param.default))
        return Call(self.name, tuple(args), tuple(kwargs))


def _render(exprs: dict[str, Any], where: str,
            leaf: Callable[[dict[str, Any], str], str]) -> Any:
    """One expression as it differs between instances (or variants): ``leaf`` writes a value."""
    first = next(iter(exprs.values()))
    if isinstance(first, Call):
        args = [_render({p: e.args[k] for p, e in exprs.items()}, f"{where}_arg{k}", leaf)
                for k in range(len(first.args))]
        for k, (key, _, default) in enumerate(first.kwargs):
            values = {p: e.kwargs[k][1] for p, e in exprs.items()}
            if default is not REQUIRED and all(v == default for v in values.values()):
                continue
            args.append(_prefix(f"{key}=", _render(values, f"{where}_{key}", leaf)))
        return _pack(first.func, args)
    if isinstance(first, DictExpr):
        items = [
            _prefix(f'"{key}": ', _render({p: e.items[k][1] for p, e in exprs.items()},
                                          f"{where}_{key}", leaf))
            for k, (key, _) in enumerate(first.items)
        ]
        return _pack("", items, "{", "}")
    return leaf(exprs, where)


def _scaled(name: str, bases: dict[str, Any], values: dict[str, Any]) -> str | None:
    if not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in bases.values()):
        return None
    path = next(iter(values))
    value, base = values[path], bases[path]
    if value % base == 0 and value // base > 1:
        factor = value // base
        if all(values[p] == bases[p] * factor for p in values):
            return f"{name} * {factor}"
    if value and base % value == 0 and base // value > 1:
        divisor = base // value
        if all(bases[p] // divisor == values[p] and bases[p] % divisor == 0 for p in values):
            return f"{name} // {divisor}"
    return None


def _normal(value: Any) -> Any:
    if isinstance(value, list | tuple):
        items = tuple(_normal(v) for v in value)
        return items[0] if items and len(set(items)) == 1 and len(items) == 2 else items
    return value


def _identifier(text: str) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    if not name or name[0].isdigit():
        name = f"v{name}"
    return f"{name}_" if name in RESERVED else name


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def _annotation(values: list[Any]) -> str:
    kinds = []
    for value in values:
        if isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, int):
            kind = "int"
        elif isinstance(value, float):
            kind = "float"
        elif isinstance(value, tuple):
            kind = "tuple[" + ", ".join(_annotation([v]) for v in value) + "]"
        elif isinstance(value, str):
            kind = "str"
        else:
            kind = "object"
        if kind not in kinds:
            kinds.append(kind)
    return " | ".join(kinds)


def _common(values: list[Any]) -> Any:
    counts = Counter(map(repr, values))
    best = max(counts.values())
    return next(v for v in values if counts[repr(v)] == best)


@dataclass(frozen=True)
class Packed:
    """A bracketed expression that the layout may break over lines: ``func(a, b)``."""

    func: str
    args: tuple[Any, ...]  # str or Packed
    open: str = "("
    close: str = ")"

    def flat(self) -> str:
        """The expression on one line."""
        inner = ", ".join(a.flat() if isinstance(a, Packed) else a for a in self.args)
        return f"{self.func}{self.open}{inner}{self.close}"


def _pack(func: str, args: list[Any], open_: str = "(", close: str = ")") -> Packed:
    return Packed(func, tuple(args), open_, close)


def _prefix(text: str, expr: Any) -> Any:
    if isinstance(expr, Packed):
        return Packed(text + expr.func, expr.args, expr.open, expr.close)
    return text + expr


def _flat(expr: Any) -> str:
    return expr.flat() if isinstance(expr, Packed) else str(expr)


def layout(expr: Any, indent: int, lead: str = "", trail: str = "") -> list[str]:
    """Lines of ``lead + expr + trail`` within WIDTH, broken the way ruff format does."""
    pad = " " * indent
    single = f"{pad}{lead}{_flat(expr)}{trail}"
    if len(single) <= WIDTH or not isinstance(expr, Packed) or not expr.args:
        return [single]
    inner = ", ".join(_flat(a) for a in expr.args)
    opening = f"{pad}{lead}{expr.func}{expr.open}"
    closing = f"{pad}{expr.close}{trail}"
    if len(pad) + 4 + len(inner) <= WIDTH and not any(
        isinstance(a, Packed) and len(pad) + 4 + len(_flat(a)) > WIDTH for a in expr.args
    ):
        return [opening, f"{pad}    {inner}", closing]
    lines = [opening]
    for arg in expr.args:
        lines.extend(layout(arg, indent + 4, "", ","))
    return [*lines, closing]


def _assign(target: str, expr: Any, indent: int) -> list[str]:
    return layout(expr, indent, f"{target} = ")


def _signature_lines(params: list[Param]) -> list[str]:
    rendered = ["self"]
    for param in params:
        text = f"{param.name}: {param.annotation}"
        if param.default is not REQUIRED:
            text += f" = {_literal(param.default)}"
        rendered.append(text)
    return layout(Packed("def __init__", tuple(rendered)), 4, "", " -> None:")


class ForwardWriter:
    """Writes a straight-line ``forward``: names tensors and reuses names that fall free."""

    def __init__(self, body: Body, parameters: list[str], protected: set[str],
                 flags: set[str], inputs: list[str] | None = None,
                 outputs: dict[str, str] | None = None,
                 order: dict[str, int] | None = None) -> None:
        self.body = body
        self.parameters = parameters
        self.protected = protected
        self.flags = flags
        self.inputs = inputs or [body.input]
        self.outputs = outputs
        self.steps = [s for m in body.members for s in m.steps]
        if order is not None:
            # Members in scope order can interleave (model.2, a top-level concat, model.3):
            # ordering steps by their output's node keeps every read after its write.
            self.steps.sort(key=lambda step: order[step.output])
        self.last: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            for tensor in step.inputs:
                self.last[tensor] = index
        end = len(self.steps)
        for tensor in (outputs or {body.output: body.output}).values():
            self.last[tensor] = end
        self.forked: set[str] = set()

    def write(self) -> list[str]:
        names = dict(zip(self.inputs, self.parameters, strict=True))  # tensor -> variable
        holder = {v: t for t, v in names.items()}  # variable -> tensor
        lines: list[str] = []
        for index, step in enumerate(self.steps):
            arguments = [names[t] for t in step.inputs]
            target = self._target(index, step, names, holder)
            holder[target] = step.output
            names[step.output] = target
            lines.extend(self._line(step, arguments, target))
        annotations = ", ".join(f"{p}: Tensor" for p in self.parameters)
        if self.outputs is None or len(self.outputs) == 1:
            result, kind = names[self.body.output if self.outputs is None
                                 else next(iter(self.outputs.values()))], "Tensor"
        else:
            result = "{" + ", ".join(f'"{k}": {names[v]}' for k, v in self.outputs.items()) + "}"
            kind = "dict[str, Tensor]"
        head = f"    def forward(self, {annotations}) -> {kind}:"
        return [head, *lines, f"        return {result}"]

    def _free(self, variable: str, index: int, holder: dict[str, str]) -> bool:
        tensor = holder.get(variable)
        return tensor is None or self.last.get(tensor, -1) <= index

    def _fresh(self, base: str, index: int, holder: dict[str, str]) -> str:
        base = _identifier(base)
        candidate, number = base, 2
        while candidate in self.protected or not self._free(candidate, index, holder):
            candidate, number = f"{base}{number}", number + 1
        return candidate

    def _target(self, index: int, step: Step, names: dict[str, str],
                holder: dict[str, str]) -> str:
        member = self.body.by_segment[step.member]
        first = member.steps[0] is step
        dies = [t for t in step.inputs if self.last.get(t) == index]
        for tensor in step.inputs:
            if self.last.get(tensor, -1) > index:
                self.forked.add(tensor)
        if step.op is not None and step.member == step.output.rsplit(".", 1)[-1]:
            for tensor in dies:
                if names[tensor] in ("x", "out") and names[tensor] not in self.protected:
                    return names[tensor]
            return self._fresh("x" if self._free("x", index, holder) else "out", index, holder)
        if first:
            source = step.inputs[0]
            branch = self.last.get(source, -1) > index or (
                source in self.forked and source in dies and step.member not in self.flags
            )
            if not branch and source in dies and names[source] not in self.protected:
                return names[source]
            if branch:
                base = "out" if member.unit and _is_leaf(member) else step.member
                return self._fresh(base, index, holder)
            return self._fresh("x", index, holder)
        for tensor in dies:
            if names[tensor] not in self.protected:
                return names[tensor]
        return self._fresh(step.member, index, holder)

    def _line(self, step: Step, arguments: list[str], target: str) -> list[str]:
        if step.op is not None:
            text = _operation(step.op, arguments)
        else:
            text = f"{step.attribute}({', '.join(arguments)})"
        if step.member in self.flags:
            if target == arguments[0]:
                return [f"        if self.{step.member} is not None:",
                        f"            {target} = {text}"]
            return [f"        {target} = {text} if self.{step.member} is not None "
                    f"else {arguments[0]}"]
        return _assign(target, text, 8)


def _is_leaf(member: Member) -> bool:
    return isinstance(member.expr, Call) and member.expr.func != "nn.Sequential" and (
        member.expr.func.startswith("nn.") or member.expr.func in HELPER_CLASSES)


def _operation(op: str, arguments: list[str]) -> str:
    if op == "add":
        return " + ".join(arguments)
    if op == "mul":
        return " * ".join(arguments)
    if op == "concat":
        return f"torch.cat([{', '.join(arguments)}], 1)"
    if op == "flatten":
        return f"torch.flatten({arguments[0]}, 1)"
    raise NotImplementedError(op)


# How the emitted loop initialises a tensor; PyTorch's own defaults (linear layers) are left.
_INIT_CALLS = {
    "kaiming_normal": 'nn.init.kaiming_normal_(module.{}, mode="fan_out", nonlinearity="relu")',
    "ones": "nn.init.ones_(module.{})",
    "zeros": "nn.init.zeros_(module.{})",
}
_TORCH_DEFAULTS = frozenset({"kaiming_uniform", "uniform"})


def _init_body(node: ir.Node) -> tuple[str, ...]:
    """The init statements for every module of a kind, from its state (buffers keep theirs)."""
    switches: dict[str, Any] = {name: True for name in node.optional_state}
    full = dataclasses.replace(node, **switches)
    lines: list[str] = []
    for state in full.state():
        if state.buffer or state.init in _TORCH_DEFAULTS:
            continue
        call = _INIT_CALLS[state.init].format(state.name)
        if state.optional:
            lines += [f"if module.{state.name} is not None:", f"    {call}"]
        else:
            lines.append(call)
    return tuple(lines)


def _init_lines(network: ir.Network) -> list[str]:
    first: dict[str, ir.Node] = {}
    for node in network.nodes:
        first.setdefault(node.kind, node)
    groups: list[tuple[tuple[str, ...], list[str]]] = []  # body, classes
    for kind in REGISTRY:
        if kind not in first:
            continue
        body = _init_body(first[kind])
        if not body:
            continue
        for existing, classes in groups:
            if existing == body:
                classes.extend(CLASSES[kind])
                break
        else:
            groups.append((body, list(CLASSES[kind])))
    lines = []
    for index, (body, classes) in enumerate(groups):
        keyword_ = "elif" if index else "if"
        lines.append(f"            {keyword_} isinstance(module, {' | '.join(classes)}):")
        lines.extend(f"                {line}" for line in body)
    if not lines:
        return []
    comment = "        # Kaiming normal (fan_out) convolutions, batch norm 1 and 0, default linear."
    return ["", comment, "        for module in self.modules():", *lines]


def _root(emitter: Emitter) -> Body:
    network = emitter.network
    return emitter.body("", network.inputs[0] if network.inputs else "",
                        next(iter(network.outputs.values()), ""))


def emit(network: ir.Network, *, spec: str | Path | None = None, **load_options: Any) -> str:
    """Standalone PyTorch source for ``network`` (imports only torch).

    The network class takes the network's parameters that its layers use (``Resnet50(classes=
    10)``), with the values it was compiled with as defaults. They are found by checking the
    spec again with each parameter changed, so the spec must be at hand: ``spec`` (a path or the
    text, loaded with ``load_options`` as ``network`` was), else ``network.file``; without it
    every value is a literal.
    """
    emitter = Emitter(network, _definitions(spec, network.file))
    emitter.build_classes()
    root = _root(emitter)
    variants = _variants(emitter, root, spec, load_options)
    exprs, values = _expressible(root, variants)
    parameters = [_identifier(name) for name in network.inputs]
    network_class = _class_name(network.name)
    while network_class in {c.name for c in emitter.class_order} | HELPER_CLASSES:
        network_class += "Net"
    init = ["        super().__init__()"]
    for member in root.members:
        if member.expr is not None:
            text = _render(exprs[member.segment], member.segment, _NetworkLeaf(values))
            init.extend(_assign(_attribute("self", member.segment), text, 8))
    init.extend(_init_lines(network))
    signature = [Param(_identifier(name), _annotation([value]), value)
                 for name, value in values[""].items()]
    forward = ForwardWriter(root, parameters, protected=set(parameters) - {"x"}, flags=set(),
                            inputs=list(network.inputs), outputs=dict(network.outputs),
                            order=emitter.index).write()
    doc = (f'    """Network ``{network.name}``: {network.total_params:,} parameters."""')
    network_lines = [f"class {network_class}(nn.Module):", doc, "",
                     *_network_signature(signature), *init, "", *forward]
    sections = []
    if emitter.helpers:  # importing the helpers' module imports torch: only when they are used
        from cnndsl.backends.torch import modules

        sections = [inspect.getsource(modules.HELPERS[h]).rstrip() for h in sorted(emitter.helpers)]
    sections.extend("\n".join(c.lines) for c in emitter.class_order)
    sections.append("\n".join(network_lines))
    code = "\n\n\n".join(sections) + "\n"
    preamble = [_header(network, network_class), "", _imports(code), "",
                f'__all__ = ["{network_class}"]']
    return "\n".join(preamble) + "\n\n\n" + code


# -- the network's parameters -----------------------------------------------------------------


class _Inexpressible(Exception):
    """A value that changes with some parameters but is none of them (nor a multiple)."""

    def __init__(self, variants: set[str]) -> None:
        super().__init__(variants)
        self.variants = variants


@dataclass
class _NetworkLeaf:
    """Writes a network-level value: a literal, or the parameter (times a factor) it follows.

    ``values`` maps each variant ("" the network as compiled, else the name of the one
    parameter changed in it) to every exposed parameter's value there.
    """

    values: dict[str, dict[str, Any]]

    def __call__(self, leaves: dict[str, Any], where: str) -> str:
        base = leaves[""]
        changed = {variant for variant, value in leaves.items() if repr(value) != repr(base)}
        if not changed:
            return _literal(base)
        if len(changed) == 1 and not isinstance(base, bool):
            (name,) = changed
            if all(leaves[v] == self.values[v][name] for v in leaves):
                return _identifier(name)
            numbers = all(isinstance(v, int) and not isinstance(v, bool) for v in leaves.values())
            scaled = numbers and _scaled(_identifier(name),
                                         {v: self.values[v][name] for v in leaves}, leaves)
            if scaled:
                return scaled
        raise _Inexpressible(changed)


def _definitions(source: str | Path | None, file: str) -> Any:
    """The spec's definitions (its imports' too), or None when it cannot be read."""
    from cnndsl.diagnostics import Reporter
    from cnndsl.frontend.imports import load_definitions

    if source is None:
        if not Path(file).is_file():
            return None
        source = file
    text = source if isinstance(source, str) and "\n" in source else None
    try:
        if text is None:
            text = Path(source).read_text(encoding="utf-8")
        return load_definitions(text, file if text is source else str(source), Reporter())
    except (OSError, UnicodeDecodeError, CnnError):
        return None


_UNKNOWN = object()  # a default the emitter cannot evaluate (an expression)


def _literal_defaults(definitions: Any) -> dict[str, dict[str, Any]]:
    """Each block's parameters with their spec defaults: block -> name -> value, REQUIRED for
    none, _UNKNOWN for an expression."""
    if definitions is None:
        return {}
    return {name: {_identifier(p.name): _default(p.default) for p in block.params}
            for name, block in definitions.blocks.items()}


def _default(expr: Any) -> Any:
    if expr is None:
        return REQUIRED
    if isinstance(expr, ast.Number | ast.Str):
        return expr.value
    if isinstance(expr, ast.Size):
        return _normal(tuple(expr.dims))
    return _UNKNOWN


def _variants(emitter: Emitter, root: Body, spec: str | Path | None,
              options: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Body]]:
    """The network as compiled ("") and with each numeric parameter changed, where the change
    leaves the block classes and the members' shapes as they are."""
    from cnndsl.compiler import check

    network = emitter.network
    source = spec if spec is not None else network.file
    definitions = emitter.definitions
    if definitions is None:
        return {"": ({}, root)}
    definition = definitions.networks.get(network.name)
    overrides = dict(options.pop("params", None) or {})
    options = {"network": network.name, **options}
    values: dict[str, Any] = {}
    for param in definition.params if definition else ():
        value = overrides.get(param.name)
        if value is None and isinstance(param.default, ast.Number):
            value = param.default.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[param.name] = value

    def emitted(params: dict[str, Any]) -> Emitter | None:
        result = check(source, params=params, **options)
        if result.network is None or not result.ok:
            return None
        variant = Emitter(result.network, definitions)
        variant.build_classes()
        return variant

    again = emitted(overrides) if values else None
    if again is None or _shape(again, _root(again)) != _shape(emitter, root):
        return {"": ({}, root)}  # the spec at hand is not the one compiled
    variants = {"": (values, root)}
    for name, value in values.items():
        probe = value * 2 if value else 2
        variant = emitted({**overrides, name: probe})
        if variant is not None:
            body = _root(variant)
            if _shape(variant, body, structure_only=True) == _shape(emitter, root, True):
                variants[name] = ({**values, name: probe}, body)
    return variants


def _shape(emitter: Emitter, root: Body, structure_only: bool = False) -> Any:
    """What must agree between variants: the block classes, the members and their kinds."""
    classes = [c.lines for c in emitter.class_order]
    members = [(m.segment, _structure(m.expr) if structure_only else m.expr, m.unit)
               for m in root.members]
    return classes, members


def _expressible(root: Body, variants: dict[str, tuple[dict[str, Any], Body]]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Each member's expression per variant, and each variant's parameter values, keeping only
    the parameters that every value they change can be written in."""
    kept = dict(variants)
    while True:
        used = {name for name in kept if name}
        values = {v: {n: x for n, x in kept[v][0].items() if n in used} for v in kept}
        exprs = {m.segment: {v: kept[v][1].by_segment[m.segment].expr for v in kept}
                 for m in root.members if m.expr is not None}
        try:
            for segment, by_variant in exprs.items():
                _render(by_variant, segment, _NetworkLeaf(values))
        except _Inexpressible as error:
            for variant in error.variants:
                kept.pop(variant)
            continue
        changed = {v for v in kept if v and any(
            repr(e[v]) != repr(e[""]) for e in exprs.values())}
        if changed != used:  # a parameter that changes nothing is not worth a constructor arg
            kept = {v: kept[v] for v in kept if not v or v in changed}
            continue
        return exprs, values


def _network_signature(params: list[Param]) -> list[str]:
    if not params:
        return ["    def __init__(self) -> None:"]
    rendered = ["self", *(f"{p.name}: {p.annotation} = {_literal(p.default)}" for p in params)]
    return layout(Packed("def __init__", tuple(rendered)), 4, "", " -> None:")


def _header(network: ir.Network, class_name: str) -> str:
    inputs = "; ".join(f"{name}: {ir.shape_str(network.node(name).shape)}"
                       for name in network.inputs)
    outputs = "; ".join(f"{name}: {ir.shape_str(shape)}"
                        for name, shape in network.output_shapes().items())
    lines = [
        f'"""{class_name}: network ``{network.name}``, generated by cnndsl.',
        "",
        f"Spec: {network.file}",
        "",
        f"Parameters: {network.total_params:,} (trainable {network.trainable_params:,}).",
        f"Input {inputs}.",
        f"Output {outputs}.",
        f"Regenerate with: cnndsl compile {network.file} --to torch",
        '"""',
    ]
    return "\n".join(lines)


def _imports(code: str) -> str:
    """The import lines that ``code`` needs, sorted as isort would."""
    lines = []
    if "torch." in code.replace("torch.nn", ""):
        lines.append("import torch")
    if "F." in code:
        lines.append("import torch.nn.functional as F")
    names = [name for name in ("Tensor", "nn") if f"{name}" in code]
    lines.append(f"from torch import {', '.join(names)}")
    return "\n".join(lines)
