"""Composites: the braced words ``residual``, ``concat``, ``scale`` and ``se``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnndsl import ir, shapes
from cnndsl.diagnostics import Code
from cnndsl.frontend.arguments import composite_signature
from cnndsl.frontend.failures import Fail
from cnndsl.frontend.naming import Frame, Scope
from cnndsl.symbolic import Dim, Poly, simplify
from cnndsl.syntax import ast

if TYPE_CHECKING:
    from cnndsl.frontend.statements import Elaborator


def composite(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
    """Elaborate a composite call from tensor ``x``; the tensor it produces."""
    name = call.name
    if name == "se":
        return _squeeze_excitation(el, call, x, frame, scope)
    if call.body is None:
        raise el.fail(Code.SYNTAX, call.span, f"'{name}' needs a body: {name} {{ ... }}")
    if call.shortcut is not None and name != "residual":
        raise el.fail(Code.SYNTAX, call.span, "only 'residual' takes a shortcut")
    if call.body.bars and name != "concat":
        raise el.fail(Code.SYNTAX, call.body.span,
                      "'|' separates branches of concat only; use new lines or '->'")
    if name == "residual":
        return _residual(el, call, x, frame, scope)
    if name == "concat":
        return _concat_branches(el, call, x, frame, scope)
    return _scale(el, call, x, frame, scope)


def _options(el: Elaborator, call: ast.Call, frame: Frame,
             defaults: dict[str, Any]) -> dict[str, Any]:
    return el.binder.bind(composite_signature(call.name, defaults), call, frame.env)


def _residual(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
    assert call.body is not None
    options = _options(el, call, frame, {"project": True})
    main = el.sequence(call.body, x, frame, scope)
    main_shape, in_shape = el.graph.shapes[main], el.graph.shapes[x]
    if call.shortcut is not None:
        short = el.sequence(call.shortcut, x, frame,
                            scope.child(el.names.unique_child(scope, "downsample")))
    elif main_shape == in_shape or main_shape is None or in_shape is None:
        short = x
    elif not options["project"]:
        short = x  # the add reports the mismatch
    else:
        short = _projection(el, call, x, main, scope)
    node = ir.Add(name=el.names.auto_name("add", scope), inputs=[main, short], span=call.span)
    return el.graph.add(node, [main, short])


def _projection(el: Elaborator, call: ast.Call, x: str, main: str, scope: Scope) -> str:
    in_shape, out_shape = el.graph.shapes[x], el.graph.shapes[main]
    assert in_shape is not None and out_shape is not None
    if len(in_shape) != 3 or len(out_shape) != 3:
        raise el.fail(Code.RANK_MISMATCH, call.span,
                      "a residual needs feature maps on both paths")
    stride = []
    for before, after in zip(in_shape[1:], out_shape[1:], strict=True):
        if before == after:
            stride.append(1)
            continue
        factor = integer_ratio(before, after)
        if factor is None:
            raise el.fail(Code.SPATIAL_MISMATCH, call.span,
                          f"the residual changes the size from {shapes.fmt(in_shape)} to "
                          f"{shapes.fmt(out_shape)}, which no 1x1 strided projection gives",
                          "write the shortcut explicitly: residual {...} shortcut {...}")
        stride.append(factor)
    if not isinstance(in_shape[0], int) or not isinstance(out_shape[0], int):
        raise el.fail(Code.CHANNEL_MISMATCH, call.span, "channel counts must be numbers")
    prefix = el.names.unique(scope.prefix + "downsample")
    conv = ir.Conv(name=f"{prefix}.0", inputs=[x], span=call.span, in_channels=in_shape[0],
                   out_channels=out_shape[0], kernel=(1, 1), stride=(stride[0], stride[1]),
                   bias=False)
    y = el.graph.add(conv, [x])
    bn = ir.BatchNorm(name=f"{prefix}.1", inputs=[y], span=call.span, channels=out_shape[0])
    return el.graph.add(bn, [y])


def _concat_branches(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
    assert call.body is not None
    _options(el, call, frame, {})
    outputs: list[str] = []
    failed = False
    for index, statement in enumerate(call.body.statements, start=1):
        if not isinstance(statement, ast.ChainStatement):
            raise el.fail(Code.SYNTAX, statement.span, "each branch of concat is a chain")
        name = el.names.unique_child(scope, statement.label or f"branch{index}")
        calls = statement.chain.calls
        try:
            if el.lone_call(calls, frame):
                output = el.chain(statement.chain, x, frame, scope, scope.prefix + name)
            else:
                numbered = el.only_blocks(calls, frame)
                output = el.chain(statement.chain, x, frame,
                                  scope.child(name, numbered=numbered))
            outputs.append(output or "")
        except Fail:
            failed = True
    if failed or not all(outputs):
        raise Fail()
    if len(outputs) < 2:
        raise el.fail(Code.MISSING_ARGUMENT, call.span, "concat needs at least two branches")
    node = ir.Concat(name=el.names.auto_name("concat", scope), inputs=outputs, span=call.span)
    return el.graph.add(node, outputs)


def _scale(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
    assert call.body is not None
    _options(el, call, frame, {})
    gate = el.sequence(call.body, x, frame, scope)
    node = ir.Mul(name=el.names.auto_name("mul", scope), inputs=[x, gate], span=call.span)
    return el.graph.add(node, [x, gate])


def _squeeze_excitation(el: Elaborator, call: ast.Call, x: str, frame: Frame,
                        scope: Scope) -> str:
    options = _options(el, call, frame, {"reduction": 16, "channels": 0})
    shape = el.graph.shapes[x]
    if shape is None:
        raise Fail()
    if len(shape) != 3 or not isinstance(shape[0], int):
        raise el.fail(Code.RANK_MISMATCH, call.span, "se needs a feature map input")
    channels = shape[0]
    squeezed = options["channels"]
    if not squeezed:
        if channels % options["reduction"]:
            raise el.fail(Code.INEXACT_DIVISION, call.span,
                          f"{channels} channels / reduction {options['reduction']} is not "
                          "a whole number", "give channels= explicitly")
        squeezed = channels // options["reduction"]
    inner = scope.child(el.names.unique_child(scope, "se"))
    add = el.graph.add
    pooled = add(ir.GlobalPool(name=f"{inner.prefix}pool", inputs=[x], mode="avg",
                               span=call.span), [x])
    fc1 = add(ir.Conv(name=f"{inner.prefix}fc1", inputs=[pooled], span=call.span,
                      in_channels=channels, out_channels=squeezed, kernel=(1, 1)), [pooled])
    act = add(ir.Activation(name=f"{inner.prefix}relu", inputs=[fc1], function="relu",
                            span=call.span), [fc1])
    fc2 = add(ir.Conv(name=f"{inner.prefix}fc2", inputs=[act], span=call.span,
                      in_channels=squeezed, out_channels=channels, kernel=(1, 1)), [act])
    gate = add(ir.Activation(name=f"{inner.prefix}gate", inputs=[fc2], function="sigmoid",
                             span=call.span), [fc2])
    node = ir.Mul(name=f"{inner.prefix}scale", inputs=[x, gate], span=call.span)
    return add(node, [x, gate])


def integer_ratio(before: Dim, after: Dim) -> int | None:
    """The stride s with ceil(before / s) == after, where one exists."""
    if isinstance(before, int) and isinstance(after, int):
        if after < 1:
            return None
        # ceil(before / s) falls as s grows: the first s that reaches `after` is the only one
        # that can equal it (a loop over s took minutes for a billion-pixel side).
        stride = max(2, -(-before // after))
        return stride if stride <= before and -(-before // stride) == after else None
    for s in range(2, 65):
        if simplify(Poly.floordiv(before + (s - 1), s) if isinstance(before, Poly) else 0) == after:
            return s
    return None
